import type { KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import type { Store } from '../store/index.js';
import type { LedgerHead } from '../store/evidence.js';
import { canonicalJson, sha256Hex } from './canonical.js';
import type { SigningKeys } from './keys.js';

/** The `prev` of a tenant's first entry. */
export const GENESIS = '0'.repeat(64);

export type LedgerKind = 'manifest' | 'tombstone' | 'access';

/** One ledger entry as hashed: its place, the hash of the entry before it, and what it records. */
export interface LedgerEntry {
  v: 1;
  tenant_id: string;
  seq: number;
  prev: string;
  at: string;
  kind: LedgerKind;
  data: Record<string, unknown>;
}

/** Where a signed document sits in its tenant's ledger: signing it binds it to everything before. */
export interface LedgerPlace {
  seq: number;
  prev: string;
}

export const placeAfter = (head: LedgerHead): LedgerPlace => ({
  seq: (head?.seq ?? 0) + 1,
  prev: head?.hash ?? GENESIS,
});

/** The hash an entry is chained by: SHA-256 of its canonical JSON. */
export function entryHash(entry: LedgerEntry): string {
  return sha256Hex(canonicalJson(entry));
}

/** A compact JWS (EdDSA) over the canonical JSON of `payload`. */
export async function signJson(
  signer: { kid: string; key: KeyObject },
  payload: unknown,
  typ: string,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(canonicalJson(payload)))
    .setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ })
    .sign(signer.key);
}

/** What a deleted recording leaves in the ledger, signed. */
export interface TombstoneDocument {
  type: 'callrec.tombstone';
  tenant_id: string;
  recording_id: string;
  call_id: string;
  object_key: string | null;
  deleted_by: string;
  reason: string;
  deleted_at: string;
  /** SHA-256 of the deleted recording's manifest (JWS), where it had one. */
  manifest_sha256: string | null;
  ledger: LedgerPlace;
}

/** One stream or download of a recording. */
export interface AccessRecord {
  recording_id: string;
  call_id: string;
  key_id: string;
  format: string;
  range: string | null;
  ip: string;
  /** `read`: streamed or downloaded; `evidence`: exported in an evidence package. */
  purpose: 'read' | 'evidence';
  at: string;
}

/**
 * Appends to a tenant's ledger. Entries go in one at a time per tenant (the store serializes them
 * across nodes); manifests and tombstones are signed with their place in it, so a signature also
 * vouches for every entry before.
 */
export class Ledger {
  readonly #store: Store;
  readonly #keys: SigningKeys;

  constructor(store: Store, keys: SigningKeys) {
    this.#store = store;
    this.#keys = keys;
  }

  /**
   * Signs a manifest made for its ledger place and appends it with its entry, in one transaction.
   * `make` is asked again if another node took the place first.
   */
  async appendManifest(
    tenantId: string,
    recordingId: string,
    callId: string,
    make: (place: LedgerPlace, signedAt: string) => object,
  ): Promise<string> {
    const signer = await this.#keys.current();
    const jws = await this.#store.evidence.append(
      tenantId,
      async (head) => {
        const place = placeAfter(head);
        const at = new Date().toISOString();
        const jws = await signJson(signer, make(place, at), 'callrec-manifest+jws');
        const entry = this.#entry(tenantId, place, at, 'manifest', {
          recording_id: recordingId,
          call_id: callId,
          manifest_sha256: sha256Hex(jws),
        });
        return {
          row: { kind: 'manifest', ref: recordingId, entry: canonicalJson(entry), hash: entryHash(entry) },
          manifest: {
            recording_id: recordingId,
            tenant_id: tenantId,
            call_id: callId,
            jws,
            kid: signer.kid,
            signed_at: at,
            tsa_token: null,
          },
          result: jws,
        };
      },
      { manifestOf: recordingId },
    );
    // Null: another node signed it first; theirs stands.
    return jws ?? (await this.#store.evidence.manifest(recordingId))!.jws;
  }

  /** Appends a signed tombstone for a deleted recording. */
  async appendTombstone(doc: Omit<TombstoneDocument, 'type' | 'ledger' | 'manifest_sha256'>): Promise<void> {
    const signer = await this.#keys.current();
    const manifest = await this.#store.evidence.manifest(doc.recording_id);
    await this.#store.evidence.append(doc.tenant_id, async (head) => {
      const place = placeAfter(head);
      const tombstone: TombstoneDocument = {
        type: 'callrec.tombstone',
        ...doc,
        manifest_sha256: manifest ? sha256Hex(manifest.jws) : null,
        ledger: place,
      };
      const jws = await signJson(signer, tombstone, 'callrec-tombstone+jws');
      const entry = this.#entry(doc.tenant_id, place, doc.deleted_at, 'tombstone', {
        recording_id: doc.recording_id,
        call_id: doc.call_id,
        tombstone: jws,
      });
      return {
        row: { kind: 'tombstone', ref: doc.recording_id, entry: canonicalJson(entry), hash: entryHash(entry) },
        result: undefined,
      };
    });
  }

  /** Appends an access-log entry: chained, and vouched for by the next signed entry. */
  async appendAccess(tenantId: string, access: AccessRecord): Promise<void> {
    await this.#store.evidence.append(tenantId, async (head) => {
      const entry = this.#entry(tenantId, placeAfter(head), access.at, 'access', { ...access });
      return {
        row: { kind: 'access', ref: access.recording_id, entry: canonicalJson(entry), hash: entryHash(entry) },
        result: undefined,
      };
    });
  }

  #entry(
    tenantId: string,
    place: LedgerPlace,
    at: string,
    kind: LedgerKind,
    data: Record<string, unknown>,
  ): LedgerEntry {
    return { v: 1, tenant_id: tenantId, seq: place.seq, prev: place.prev, at, kind, data };
  }
}
