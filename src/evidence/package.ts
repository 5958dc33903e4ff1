import { strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import type { Store } from '../store/index.js';
import type { StoredEntry } from './verify.js';
import type { KeySet } from './keys.js';

/** Entries an extract carries at most between a manifest and a recording's last entry; past it, only the recording's own entries and the ones before each. */
const EXTRACT_CONTIGUOUS_MAX = 20_000;

/** The files of an evidence package (SPEC §9). */
export interface EvidenceFiles {
  /** `recording.<format>`: the stored original, as served. */
  audioName: string;
  audio: Uint8Array;
  manifest: string;
  keys: KeySet;
  /** Ledger entries, in order: the entry before the manifest's, then on to the recording's last entry. */
  ledger: StoredEntry[];
  /** The consent prompt as played, when the call had one: `consent-prompt.<codec>-<rate>.raw`, hashed as the manifest says. */
  prompt?: { name: string; audio: Uint8Array };
  /** `manifest.tsr`: the RFC 3161 time-stamp token over manifest.jws, when `TSA_URL` gave one. */
  timestamp?: Uint8Array;
}

/**
 * The ledger entries that prove a recording's place and its access history: the entry before its
 * manifest (whose hash the manifest signs), then every entry up to the recording's last one, so
 * nothing between can have been removed; a very long stretch keeps only the recording's entries,
 * each with the one before it.
 */
export async function ledgerExtract(store: Store, tenantId: string, recordingId: string): Promise<StoredEntry[]> {
  const own = await store.evidence.entriesFor(tenantId, recordingId);
  if (own.length === 0) return [];
  const first = own[0].seq - 1;
  const last = own[own.length - 1].seq;
  const wanted =
    last - first <= EXTRACT_CONTIGUOUS_MAX
      ? Array.from({ length: last - first + 1 }, (_, i) => first + i)
      : [...new Set(own.flatMap((row) => [row.seq - 1, row.seq]))];
  const rows = [];
  for (const seq of wanted) {
    const row = seq === 0 ? undefined : await store.evidence.entry(tenantId, seq);
    if (row) rows.push({ entry: row.entry, hash: row.hash });
  }
  return rows;
}

/**
 * Checking a package with stock tools (bash, coreutils, xxd, OpenSSL 3), run from the unpacked
 * package with the manifest key's `x` in `$X`. The same lines are in VERIFY.txt and docs/evidence.md,
 * and a test runs them.
 */
export const OPENSSL_RECIPE = `# 1. the audio is the one the manifest names (compare the two hashes)
sha256sum recording.*
cut -d. -f2 manifest.jws | tr '_-' '/+' | base64 -d 2>/dev/null | grep -o '"sha256":"[0-9a-f]*"' | head -1

# 2. the signature: the signing input, the signature, the key (keys.json's "x" for the manifest's kid, in $X)
cut -d. -f1,2 manifest.jws | tr -d '\\n' > signed-input
sig=$(cut -d. -f3 manifest.jws | tr '_-' '/+'); while [ $(( \${#sig} % 4 )) -ne 0 ]; do sig="$sig="; done
printf '%s' "$sig" | base64 -d > signature
x=$(printf '%s' "$X" | tr '_-' '/+'); while [ $(( \${#x} % 4 )) -ne 0 ]; do x="$x="; done
{ printf '302a300506032b6570032100'; printf '%s' "$x" | base64 -d | xxd -p -c 64; } | xxd -r -p | openssl pkey -pubin -inform DER -out key.pem
openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in signed-input -sigfile signature
`;

const VERIFY_TXT = `This package proves what a callrec recording holds, who heard it, and where it sits in its
tenant's ledger. Check it with callrec:

    callrec verify evidence.zip

or without callrec, with stock tools (bash, OpenSSL 3, xxd), from this folder, with X set to the
"x" of the key in keys.json whose "kid" the manifest's header names:

${OPENSSL_RECIPE}
The last line prints "Signature Verified Successfully". Any JOSE library (EdDSA / Ed25519) verifies
manifest.jws against keys.json too.

ledger.jsonl holds ledger entries in order, one {"entry", "hash"} per line: each hash is the
SHA-256 of its entry's text, each entry's "prev" is the hash of the line before, and the manifest's
"ledger" field names its own entry's seq and prev. The manifest's entry carries the SHA-256 of
manifest.jws. Access entries after it list who streamed, downloaded or exported the recording.

consent-prompt.<codec>-<rate>.raw, where the call played a consent prompt, is that prompt's audio
as callrec sent it into the call, in the stream's codec and rate (headerless; pcmu-8000 is G.711
mu-law at 8 kHz; a platform whose wire runs at 24 or 48 kHz got it resampled on the way): its SHA-256 is
"consent.prompt_audio_sha256" in the manifest. To listen: sox -t ul -r 8000 consent-prompt.pcmu-8000.raw prompt.wav

manifest.tsr, where present, is an RFC 3161 time-stamp token over manifest.jws from the
time-stamping authority the operator chose: it proves the manifest existed at its time.
    openssl ts -verify -data manifest.jws -in manifest.tsr -token_in -CAfile <the authority's CA certificate>

A signature proves the audio and its record are unchanged since callrec signed them at capture's
end, and that the ledger up to the manifest is as it was then; it does not prove what the
telephony provider sent was true.
`;

/** The evidence package as a ZIP. */
export function evidenceZip(files: EvidenceFiles): Uint8Array {
  const zippable: Zippable = {
    [files.audioName]: [files.audio, { level: 0 }],
    'manifest.jws': strToU8(files.manifest),
    'keys.json': strToU8(`${JSON.stringify(files.keys, null, 2)}\n`),
    'ledger.jsonl': strToU8(`${files.ledger.map((row) => JSON.stringify(row)).join('\n')}\n`),
    'VERIFY.txt': strToU8(VERIFY_TXT),
    ...(files.timestamp ? { 'manifest.tsr': files.timestamp } : {}),
    ...(files.prompt ? { [files.prompt.name]: files.prompt.audio } : {}),
  };
  return zipSync(zippable);
}

/** Reads an evidence package back (`callrec verify evidence.zip`). */
export function readEvidenceZip(zip: Uint8Array): EvidenceFiles {
  const files = unzipSync(zip);
  const text = (name: string) => {
    const data = files[name];
    if (!data) throw new Error(`the package has no ${name}`);
    return new TextDecoder().decode(data);
  };
  const audioName = Object.keys(files).find((name) => name.startsWith('recording.'));
  if (!audioName) throw new Error('the package has no recording');
  const promptName = Object.keys(files).find((name) => name.startsWith('consent-prompt.'));
  return {
    audioName,
    audio: files[audioName],
    manifest: text('manifest.jws').trim(),
    keys: JSON.parse(text('keys.json')) as KeySet,
    ledger: text('ledger.jsonl')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as StoredEntry),
    timestamp: files['manifest.tsr'],
    ...(promptName ? { prompt: { name: promptName, audio: files[promptName] } } : {}),
  };
}
