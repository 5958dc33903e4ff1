import { createPublicKey, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { CallrecError } from '../errors.js';
import { canonicalJson, sha256Hex } from './canonical.js';
import type { KeySet } from './keys.js';
import { GENESIS, type LedgerEntry } from './ledger.js';
import type { RecordingManifest } from './manifest.js';
import { verifyTimestamp } from './timestamp.js';

const notVerified = (message: string) => new CallrecError('ERR_NOT_VERIFIED', message);

/** The public keys of a key set by kid, as Node key objects. */
export function keysById(set: KeySet): Map<string, KeyObject> {
  return new Map(
    set.keys.map((jwk) => [jwk.kid, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' })]),
  );
}

/**
 * Verifies a compact JWS signed by one of `keys` and returns its JSON payload; throws
 * `ERR_NOT_VERIFIED` saying why (unknown key, bad signature, payload not canonical JSON).
 */
export async function verifySigned<T>(jws: string, keys: Map<string, KeyObject>): Promise<{ payload: T; kid: string }> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(jws).kid;
  } catch {
    throw notVerified('not a compact JWS');
  }
  const key = kid === undefined ? undefined : keys.get(kid);
  if (!key) throw notVerified(`signed by key ${kid ?? '(none)'}, which the key set does not hold`);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, key, { algorithms: ['EdDSA'] }));
  } catch {
    throw notVerified(`the signature does not verify with key ${kid}`);
  }
  const text = new TextDecoder().decode(payload);
  const value = JSON.parse(text) as T;
  if (canonicalJson(value) !== text) throw notVerified('the signed payload is not canonical JSON (RFC 8785)');
  return { payload: value, kid: kid! };
}

/** A stored ledger entry: its canonical JSON and the hash it is chained by. */
export interface StoredEntry {
  entry: string;
  hash: string;
}

/**
 * Walks a tenant's ledger in order, checking each entry's hash, its place and its link to the entry
 * before, and the signature of each signed document it carries. Feed it entries in order with
 * `check`; it throws `ERR_NOT_VERIFIED` at the first break, naming the entry.
 */
export class ChainVerifier {
  readonly #keys: Map<string, KeyObject>;
  readonly #tenantId: string;
  #seq: number;
  #prev: string;
  /** Entries checked so far. */
  count = 0;

  /** `after`: the entry before the first one fed (an extract starting mid-chain); default: the chain's start. */
  constructor(
    tenantId: string,
    keys: Map<string, KeyObject>,
    after: { seq: number; hash: string } = { seq: 0, hash: GENESIS },
  ) {
    this.#tenantId = tenantId;
    this.#keys = keys;
    this.#seq = after.seq;
    this.#prev = after.hash;
  }

  /**
   * Checks the next entry. `manifest`: the JWS a manifest entry names, when the caller has it (the
   * database; an evidence package). Returns the parsed entry.
   */
  async check(stored: StoredEntry, manifest?: string): Promise<LedgerEntry> {
    const where = `${this.#tenantId} entry ${this.#seq + 1}`;
    if (sha256Hex(stored.entry) !== stored.hash)
      throw notVerified(`${where}: changed (its hash does not match its content)`);
    const entry = JSON.parse(stored.entry) as LedgerEntry;
    if (entry.tenant_id !== this.#tenantId) throw notVerified(`${where}: belongs to tenant ${entry.tenant_id}`);
    if (entry.seq !== this.#seq + 1)
      throw notVerified(`${where}: found entry ${entry.seq} (entries removed or reordered)`);
    if (entry.prev !== this.#prev)
      throw notVerified(
        `${where}: does not follow entry ${this.#seq} (an entry before it was removed, changed or reordered)`,
      );
    const place = { seq: entry.seq, prev: entry.prev };
    if (entry.kind === 'manifest' && manifest !== undefined) {
      if (sha256Hex(manifest) !== entry.data.manifest_sha256)
        throw notVerified(`${where}: the manifest of recording ${String(entry.data.recording_id)} was changed`);
      const { payload } = await verifySigned<RecordingManifest>(manifest, this.#keys).catch((err: Error) => {
        throw notVerified(`${where}: manifest of recording ${String(entry.data.recording_id)}: ${err.message}`);
      });
      if (payload.ledger.seq !== place.seq || payload.ledger.prev !== place.prev)
        throw notVerified(`${where}: the manifest was signed for another place in the ledger`);
    }
    if (entry.kind === 'tombstone') {
      const { payload } = await verifySigned<{ ledger: { seq: number; prev: string } }>(
        String(entry.data.tombstone),
        this.#keys,
      ).catch((err: Error) => {
        throw notVerified(`${where}: tombstone of recording ${String(entry.data.recording_id)}: ${err.message}`);
      });
      if (payload.ledger.seq !== place.seq || payload.ledger.prev !== place.prev)
        throw notVerified(`${where}: the tombstone was signed for another place in the ledger`);
    }
    this.#seq = entry.seq;
    this.#prev = stored.hash;
    this.count++;
    return entry;
  }
}

/** What `callrec verify` found: each check with its outcome, and what the manifest says. */
export interface VerificationReport {
  ok: boolean;
  checks: Array<{ check: string; ok: boolean; detail: string }>;
  manifest: RecordingManifest | null;
  kid: string | null;
  /** Access entries about the recording, oldest first. */
  accesses: Array<Record<string, unknown>>;
}

/**
 * Verifies a recording offline: the manifest's signature against `keySet`, the audio's hash and
 * size against it, and (given a ledger extract) the manifest's place in its tenant's ledger and
 * the chain from there on. Every check runs; the report says which failed and why.
 */
export async function verifyRecording(input: {
  audio: Uint8Array;
  manifest: string;
  keySet: KeySet;
  ledger?: StoredEntry[];
  timestamp?: Uint8Array;
  prompt?: Uint8Array;
}): Promise<VerificationReport> {
  const report: VerificationReport = { ok: true, checks: [], manifest: null, kid: null, accesses: [] };
  const note = (check: string, ok: boolean, detail: string) => {
    report.checks.push({ check, ok, detail });
    if (!ok) report.ok = false;
  };
  const keys = keysById(input.keySet);
  try {
    const { payload, kid } = await verifySigned<RecordingManifest>(input.manifest, keys);
    report.manifest = payload;
    report.kid = kid;
    note('signature', true, `manifest signed by key ${kid}`);
  } catch (err) {
    note('signature', false, (err as Error).message);
    return report;
  }
  const manifest = report.manifest!;
  const audioHash = sha256Hex(input.audio);
  note(
    'audio',
    audioHash === manifest.audio.sha256 && input.audio.length === manifest.audio.byte_size,
    audioHash === manifest.audio.sha256
      ? `SHA-256 ${audioHash}, ${input.audio.length} bytes`
      : `the audio's SHA-256 is ${audioHash}; the manifest says ${manifest.audio.sha256} (the audio was changed or is another recording's)`,
  );
  if (input.prompt !== undefined) {
    const promptHash = sha256Hex(input.prompt);
    const signed = manifest.consent?.prompt_audio_sha256;
    note(
      'consent prompt',
      promptHash === signed,
      promptHash === signed
        ? `the prompt audio is the one played (SHA-256 ${promptHash})`
        : `the prompt audio's SHA-256 is ${promptHash}; the manifest says ${String(signed)}`,
    );
  }
  if (input.timestamp !== undefined) {
    try {
      const stamp = await verifyTimestamp(Buffer.from(input.timestamp), Buffer.from(input.manifest));
      note(
        'time-stamp',
        true,
        `the manifest existed at ${stamp.genTime.toISOString()}, stamped by ${stamp.authority} (whether to trust that authority is the reader's call)`,
      );
    } catch (err) {
      note('time-stamp', false, (err as Error).message);
    }
  }
  if (input.ledger === undefined) return report;
  try {
    report.accesses = await verifyExtract(manifest, input.manifest, input.ledger, keys);
    note(
      'ledger',
      true,
      `entry ${manifest.ledger.seq} of tenant ${manifest.tenant_id}'s ledger, chained to the ${input.ledger.length} entries of the extract`,
    );
  } catch (err) {
    note('ledger', false, (err as Error).message);
  }
  return report;
}

/** Checks a ledger extract against its manifest; returns the recording's access entries. */
async function verifyExtract(
  manifest: RecordingManifest,
  jws: string,
  extract: StoredEntry[],
  keys: Map<string, KeyObject>,
): Promise<Array<Record<string, unknown>>> {
  const { seq, prev } = manifest.ledger;
  const start = extract.findIndex((row) => (JSON.parse(row.entry) as LedgerEntry).seq === seq);
  if (start < 0) throw notVerified(`the extract does not hold the manifest's entry ${seq}`);
  let after = { seq: 0, hash: GENESIS };
  if (seq > 1) {
    const before = extract[start - 1];
    if (!before || sha256Hex(before.entry) !== before.hash || (JSON.parse(before.entry) as LedgerEntry).seq !== seq - 1)
      throw notVerified(`the extract does not hold entry ${seq - 1}, the one the manifest follows`);
    after = { seq: seq - 1, hash: before.hash };
  }
  if (after.hash !== prev)
    throw notVerified(`entry ${seq - 1} is not the one the manifest was signed after (it was changed)`);
  const accesses: Array<Record<string, unknown>> = [];
  let chain = new ChainVerifier(manifest.tenant_id, keys, after);
  for (const row of extract.slice(start)) {
    const seqOf = (JSON.parse(row.entry) as LedgerEntry).seq;
    // A long extract keeps only the recording's entries, each after the one before it: restart the chain there.
    if (seqOf !== after.seq + 1) {
      if (sha256Hex(row.entry) !== row.hash)
        throw notVerified(`${manifest.tenant_id} entry ${seqOf}: changed (its hash does not match its content)`);
      after = { seq: seqOf, hash: row.hash };
      chain = new ChainVerifier(manifest.tenant_id, keys, after);
      continue;
    }
    const entry = await chain.check(row, seqOf === seq ? jws : undefined);
    after = { seq: entry.seq, hash: row.hash };
    if (entry.kind === 'access' && entry.data.recording_id === manifest.recording_id) accesses.push(entry.data);
  }
  return accesses;
}
