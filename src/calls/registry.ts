import { CallrecError } from '../errors.js';
import type { CallSession } from './session.js';
import type { TenantStreams } from './tenant-streams.js';

/** The calls whose provider socket this node holds. */
export class CallRegistry {
  readonly #calls = new Map<string, CallSession>();
  /** Calls per tenant on this node, for MAX_STREAMS_PER_TENANT. */
  readonly #perTenant = new Map<string, number>();
  /** Calls counted in the cluster-wide count, released when they leave. */
  readonly #counted = new Set<CallSession>();
  readonly #cluster: TenantStreams | null;
  readonly #idle = new Set<() => void>();

  /** `cluster`: the tenants' streams counted across media nodes; without it, per node only. */
  constructor(cluster: TenantStreams | null = null) {
    this.#cluster = cluster;
  }

  static key(tenantId: string, callId: string): string {
    return `${tenantId}\u0000${callId}`;
  }

  get size(): number {
    return this.#calls.size;
  }

  /** Calls of `tenantId` this node holds. */
  countOf(tenantId: string): number {
    return this.#perTenant.get(tenantId) ?? 0;
  }

  get(tenantId: string, callId: string): CallSession | undefined {
    return this.#calls.get(CallRegistry.key(tenantId, callId));
  }

  /** Claims the call id on this node; false if a live session already holds it. */
  add(tenantId: string, callId: string, session: CallSession): boolean {
    const key = CallRegistry.key(tenantId, callId);
    if (this.#calls.has(key)) return false;
    this.#calls.set(key, session);
    this.#perTenant.set(tenantId, this.countOf(tenantId) + 1);
    return true;
  }

  /** Moves `session`'s claim to another call id (counts unchanged); false if that id is held or the session holds `from` no more. */
  rename(tenantId: string, from: string, to: string, session: CallSession): boolean {
    const key = CallRegistry.key(tenantId, to);
    if (this.#calls.has(key) || this.get(tenantId, from) !== session) return false;
    this.#calls.delete(CallRegistry.key(tenantId, from));
    this.#calls.set(key, session);
    return true;
  }

  /**
   * Counts a call this registry holds against its tenant's `cap` across the cluster; rejects
   * `ERR_TENANT_STREAM_LIMIT` when the tenant's streams on all live nodes reach it. A null cap
   * (MAX_STREAMS_PER_TENANT unset) counts nothing: there is nothing to hold the count against.
   */
  async admit(tenantId: string, callId: string, session: CallSession, cap: number | null): Promise<void> {
    if (cap === null) return;
    const counted = await this.#cluster?.admit(tenantId, cap);
    if (counted === false)
      throw new CallrecError(
        'ERR_TENANT_STREAM_LIMIT',
        `the tenant holds its ${cap} streams across the cluster (MAX_STREAMS_PER_TENANT)`,
      );
    if (!counted) return;
    // The call may have ended while it was being counted.
    if (this.get(tenantId, callId) === session) this.#counted.add(session);
    else this.#cluster!.release(tenantId);
  }

  delete(tenantId: string, callId: string, session: CallSession): void {
    const key = CallRegistry.key(tenantId, callId);
    if (this.#calls.get(key) === session) {
      this.#calls.delete(key);
      if (this.#counted.delete(session)) this.#cluster!.release(tenantId);
      const left = this.countOf(tenantId) - 1;
      if (left > 0) this.#perTenant.set(tenantId, left);
      else this.#perTenant.delete(tenantId);
    }
    if (this.#calls.size === 0) for (const resolve of this.#idle) resolve();
  }

  sessions(): IterableIterator<CallSession> {
    return this.#calls.values();
  }

  /** Resolves once no call is live on this node. */
  whenIdle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#idle.delete(done);
        resolve();
      };
      this.#idle.add(done);
    });
  }
}
