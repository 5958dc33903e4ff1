import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { CallrecError } from '../errors.js';
import { isScope, type Principal, type Scope } from '../auth/scopes.js';
import { displayPrefix, generateSecret, hashSecret } from '../auth/secrets.js';
import type { SealedSecret } from '../tenants/secrets.js';
import type { ApiKeysTable, Database } from './schema.js';
import type { TenantRepository } from './tenants.js';

/** An API key as listed: never its secret or hash. */
export interface ApiKey {
  id: string;
  tenantId: string;
  name: string;
  /** The first characters of the secret, to tell keys apart. */
  prefix: string;
  scopes: Scope[];
  operator: boolean;
  /** Whether the key authenticates SIPREC clients by digest. */
  sipDigest: boolean;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface NewApiKey {
  tenantId: string;
  name: string;
  scopes: Scope[];
  operator?: boolean;
  /** Seals an AudioHook client secret for the new key's id (see `newAudiohookSecret`). */
  audiohookSecret?: (keyId: string) => SealedSecret;
  /** Derives what the key keeps for SIP digest authentication from its id and secret (sealed HA1s); absent: none. */
  sipDigest?: (keyId: string, secret: string) => string;
}

/** A key that may authenticate SIP by digest, as `sipDigest` finds it. */
export interface SipDigestKey {
  tenantId: string;
  scopes: Scope[];
  /** What `NewApiKey.sipDigest` derived. */
  sealed: string;
}

export const OPERATOR_TENANT_ID = 'default';

/** `last_used_at` is informational; writing it on every request would turn reads into writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Where a failed `last_used_at` write is reported (it is otherwise ignored). */
export type KeyWriteErrorHandler = (err: unknown, keyId: string) => void;

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    prefix: row.prefix,
    scopes: (JSON.parse(row.scopes) as string[]).filter(isScope),
    operator: row.operator === 1,
    sipDigest: row.sip_digest !== null,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export class KeyRepository {
  readonly #db: Kysely<Database>;
  readonly #tenants: TenantRepository;
  readonly #onWriteError: KeyWriteErrorHandler;
  /** When this process last wrote (or tried to write) each key's `last_used_at`, ms. */
  readonly #touchedAt = new Map<string, number>();
  readonly #touches = new Set<Promise<void>>();

  constructor(db: Kysely<Database>, tenants: TenantRepository, onWriteError: KeyWriteErrorHandler) {
    this.#db = db;
    this.#tenants = tenants;
    this.#onWriteError = onWriteError;
  }

  /** Issues a key; the secret is returned here only and stored as a hash. Rejects `ERR_NOT_FOUND` for an unknown tenant. */
  async create(input: NewApiKey): Promise<{ key: ApiKey; secret: string }> {
    if (!(await this.#tenants.get(input.tenantId))) {
      throw new CallrecError('ERR_NOT_FOUND', `no tenant ${input.tenantId}`);
    }
    const secret = generateSecret();
    const row = await this.#insert(input, secret);
    return { key: toApiKey(row), secret };
  }

  async #insert(input: NewApiKey, secret: string): Promise<Selectable<ApiKeysTable>> {
    const id = randomUUID();
    const row = {
      id,
      tenant_id: input.tenantId,
      name: input.name,
      key_hash: hashSecret(secret),
      prefix: displayPrefix(secret),
      scopes: JSON.stringify([...new Set(input.scopes)]),
      operator: input.operator ? 1 : 0,
      created_at: new Date().toISOString(),
      last_used_at: null,
      revoked_at: null,
      audiohook_secret: input.audiohookSecret ? JSON.stringify(input.audiohookSecret(id)) : null,
      sip_digest: input.sipDigest ? input.sipDigest(id, secret) : null,
    };
    await this.#db.insertInto('api_keys').values(row).execute();
    return row;
  }

  /** The SIP digest material of a key that is not revoked, or null (unknown, revoked, created without it). */
  async sipDigest(keyId: string): Promise<SipDigestKey | null> {
    const row = await this.#db
      .selectFrom('api_keys')
      .select(['tenant_id', 'scopes', 'sip_digest'])
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row?.sip_digest) return null;
    return {
      tenantId: row.tenant_id,
      scopes: (JSON.parse(row.scopes) as string[]).filter(isScope),
      sealed: row.sip_digest,
    };
  }

  /**
   * The principal a secret authenticates, or null when it is unknown or revoked. Only reads:
   * `last_used_at` is written in the background (see `#touch`), so a database that cannot be
   * written (full disk) does not stop authentication.
   */
  async verify(secret: string): Promise<Principal | null> {
    const row = await this.#db
      .selectFrom('api_keys')
      .select(['id', 'tenant_id', 'scopes', 'operator', 'last_used_at'])
      .where('key_hash', '=', hashSecret(secret))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) return null;
    this.#touch(row.id, row.last_used_at);
    return {
      keyId: row.id,
      tenantId: row.tenant_id,
      scopes: (JSON.parse(row.scopes) as string[]).filter(isScope),
      operator: row.operator === 1,
    };
  }

  /**
   * Records a use of the key, best-effort: at most one write per key per minute from this
   * process, whether or not it succeeds, and a failure is reported, never thrown.
   */
  #touch(keyId: string, storedLastUsed: string | null): void {
    const now = Date.now();
    const last = Math.max(this.#touchedAt.get(keyId) ?? 0, storedLastUsed === null ? 0 : Date.parse(storedLastUsed));
    if (now - last < LAST_USED_RESOLUTION_MS) return;
    this.#touchedAt.set(keyId, now);
    const write = this.#db
      .updateTable('api_keys')
      .set({ last_used_at: new Date(now).toISOString() })
      .where('id', '=', keyId)
      .execute()
      .then(
        () => {},
        (err: unknown) => this.#onWriteError(err, keyId),
      );
    this.#touches.add(write);
    void write.finally(() => this.#touches.delete(write));
  }

  /** The sealed AudioHook client secret of a key; null when it has none. */
  async audiohookSecret(keyId: string): Promise<SealedSecret | null> {
    const row = await this.#db
      .selectFrom('api_keys')
      .select('audiohook_secret')
      .where('id', '=', keyId)
      .executeTakeFirst();
    return row?.audiohook_secret ? (JSON.parse(row.audiohook_secret) as SealedSecret) : null;
  }

  /** Waits for the `last_used_at` writes under way (before the database closes). */
  async settle(): Promise<void> {
    await Promise.all(this.#touches);
  }

  /** A key by id, within `tenantId`, or in any tenant when it is null (key ids are unique). */
  async get(tenantId: string | null, id: string): Promise<ApiKey | null> {
    let query = this.#db.selectFrom('api_keys').selectAll().where('id', '=', id);
    if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
    const row = await query.executeTakeFirst();
    return row ? toApiKey(row) : null;
  }

  /** The keys of `tenantId` (of every tenant when null), revoked ones included (they show when they were revoked), oldest first. */
  async list(tenantId: string | null): Promise<ApiKey[]> {
    let query = this.#db.selectFrom('api_keys').selectAll();
    if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toApiKey);
  }

  /** Revokes a key within `tenantId` (in any tenant when null); false when there is no such unrevoked key. */
  async revoke(tenantId: string | null, id: string): Promise<boolean> {
    let query = this.#db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null);
    if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
    const result = await query.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Makes `secret` (from `CALLREC_API_KEY`) a working operator key of tenant `default`.
   * Idempotent across restarts: an existing key with that secret is kept, and restored to
   * operator/admin if it was changed or revoked, since the environment says it must work.
   */
  async ensureOperatorKey(secret: string): Promise<ApiKey> {
    await this.#tenants.ensure(OPERATOR_TENANT_ID, 'Default');
    const keyHash = hashSecret(secret);
    const existing = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('key_hash', '=', keyHash)
      .executeTakeFirst();
    if (!existing) {
      return toApiKey(
        await this.#insert(
          { tenantId: OPERATOR_TENANT_ID, name: 'operator (CALLREC_API_KEY)', scopes: ['admin'], operator: true },
          secret,
        ),
      );
    }
    const restored = {
      tenant_id: OPERATOR_TENANT_ID,
      scopes: JSON.stringify(['admin']),
      operator: 1,
      revoked_at: null,
    };
    await this.#db.updateTable('api_keys').set(restored).where('id', '=', existing.id).execute();
    return toApiKey({ ...existing, ...restored });
  }
}
