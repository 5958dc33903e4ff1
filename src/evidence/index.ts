import type { MasterKeyring } from '../crypto/keys.js';
import type { Recording, Store, Tombstone } from '../store/index.js';
import { SigningKeys } from './keys.js';
import { Ledger, type AccessRecord } from './ledger.js';
import { buildManifest } from './manifest.js';

export { SigningKeys } from './keys.js';
export type { KeySet, PublicJwk } from './keys.js';

/** Recordings signed per pass of `signBacklog`: a pass stays short however many older recordings there are. */
const BACKLOG_BATCH = 500;

/**
 * What makes recordings evidence: each finalized recording's signed manifest, and every
 * deletion and access appended to its tenant's ledger.
 */
export class Evidence {
  readonly keys: SigningKeys;
  readonly #store: Store;
  readonly #ledger: Ledger;

  constructor(store: Store, ring: MasterKeyring) {
    this.#store = store;
    this.keys = new SigningKeys(store, ring);
    this.#ledger = new Ledger(store, this.keys);
  }

  /**
   * Signs the manifest of a finalized recording and appends it to the ledger; a recording that
   * has one keeps it (a retried job). Returns the manifest (compact JWS).
   */
  async seal(recording: Recording, signedLater = false): Promise<string> {
    const existing = await this.#store.evidence.manifest(recording.id);
    if (existing) return existing.jws;
    const call = await this.#store.calls.get(recording.tenantId, recording.callId);
    if (!call) throw new TypeError(`recording ${recording.id} has no call ${recording.callId}`);
    return this.#ledger.appendManifest(recording.tenantId, recording.id, recording.callId, (place, at) =>
      buildManifest(recording, call, place, at, signedLater),
    );
  }

  /**
   * Signs the ready recordings that have no manifest (finalized before manifests existed, or whose
   * signing failed), marked as signed later; `readySince` limits it to those made ready since then.
   * Returns how many.
   */
  async signBacklog(readySince?: string): Promise<number> {
    let signed = 0;
    for (;;) {
      const batch = await this.#store.evidence.unsignedRecordings(BACKLOG_BATCH, readySince);
      for (const { id } of batch) {
        const recording = await this.#store.recordings.get(id);
        if (recording?.status === 'ready') {
          await this.seal(recording, true);
          signed++;
        }
      }
      if (batch.length < BACKLOG_BATCH) return signed;
    }
  }

  async recordDeletion(tombstone: Tombstone): Promise<void> {
    await this.#ledger.appendTombstone({
      tenant_id: tombstone.tenantId,
      recording_id: tombstone.recordingId,
      call_id: tombstone.callId,
      object_key: tombstone.objectKey,
      deleted_by: tombstone.deletedBy,
      reason: tombstone.reason,
      deleted_at: tombstone.at,
    });
  }

  async recordAccess(tenantId: string, access: AccessRecord): Promise<void> {
    await this.#ledger.appendAccess(tenantId, access);
  }
}
