import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { pipeline } from 'node:stream/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { encryptStream } from '../src/crypto/chunked.js';
import { Evidence } from '../src/evidence/index.js';
import { CallrecError, errorCode } from '../src/errors.js';
import { newDataKey, wrapForTenant, type MasterKeyring, type WrappedKey } from '../src/crypto/keys.js';
import { encodeRecording } from '../media/encoders/index.js';
import type { PcmFile } from '../media/types.js';
import { downmix } from '../media/mix.js';
import { WaveformPeaks } from '../media/peaks.js';
import type { RecordingFormat } from '../media/types.js';
import type { RecordingJobData } from '../src/queue/recordings.js';
import { peaksDocument, putPeaks, type PeaksDocument } from '../src/recording/peaks.js';
import { mergeLostSpans } from '../src/recording/lost-spans.js';
import { openSpoolSource, type SpoolSource, type SpoolSourceOptions } from '../src/recording/shared-spool.js';
import type { StorageResolver } from '../src/storage/resolver.js';
import { emitRecordingEvent, type WebhookContext } from '../src/webhooks/index.js';
import type { Store } from '../src/store/index.js';
import type { Logger } from '../src/log.js';

export interface RecordingProcessorDeps {
  store: Store;
  /** The server's store, or the tenant's own bucket. */
  storage: StorageResolver;
  log: Logger;
  /** Wraps each recording's data key. */
  keyring: MasterKeyring;
  /** `recording.completed` / `recording.failed` go out through it. */
  webhooks: WebhookContext;
  /** Where spools shipped to object storage are read from (any `spool_url`), and this node's working directory. */
  spools: Omit<SpoolSourceOptions, 'keyring'>;
  /** Encoders one recording may run at once (MP3 splits a long call into parts); default: the CPUs. */
  encodeThreads?: number;
}

export interface RecordingJobResult {
  objectKey: string;
  byteSize: number;
  durationMs: number;
}

/**
 * One path segment of an object key from an id. Ids are checked where they come in, but a key
 * must never leave its folder whatever the id: `/` is escaped, and so are the dots of `.`/`..`.
 */
function keySegment(id: string): string {
  const encoded = encodeURIComponent(id);
  return encoded === '.' || encoded === '..' ? encoded.replaceAll('.', '%2E') : encoded;
}

/** `{tenant}/{yyyy}/{mm}/{dd}/{call_id}/{recording_id}.{format}.enc` (SPEC §6). */
export function objectKeyFor(
  tenantId: string,
  callId: string,
  recordingId: string,
  format: string,
  createdAt: string,
): string {
  const [yyyy, mm, dd] = createdAt.slice(0, 10).split('-');
  return [keySegment(tenantId), yyyy, mm, dd, keySegment(callId), `${keySegment(recordingId)}.${format}.enc`].join('/');
}

/** Downmixes stereo chunks to mono as they stream past. */
async function* toMono(chunks: AsyncIterable<Int16Array>): AsyncGenerator<Int16Array> {
  for await (const stereo of chunks) {
    const mono = new Int16Array(stereo.length / 2);
    downmix(stereo, mono, mono.length);
    yield mono;
  }
}

/** A (stereo) spool as the recording's PCM: mixed down as it is read when the recording is mono. */
function spoolPcm({ info, read }: Pick<SpoolSource, 'info' | 'read'>, channels: 1 | 2): PcmFile {
  return {
    sampleRate: info.sampleRate,
    channels,
    frames: info.frames,
    read: (start, end) => (channels === 1 ? toMono(read(start, end)) : read(start, end)),
  };
}

type Outage = 'ERR_STORAGE_UNREACHABLE' | 'ERR_SPOOL_UNREACHABLE';

/** S3 error names that mean the bucket answered and refused these credentials (or has no such bucket). */
const S3_REFUSALS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'AllAccessDisabled',
  'InvalidToken',
  'ExpiredToken',
  'AccountProblem',
  'InvalidBucketName',
  'PermanentRedirect',
]);

/**
 * Whether a bucket answered with a refusal that retrying cannot change: 401/403 (credentials,
 * permissions) or no such bucket (S3 by name; GCS 404 on an upload, which creates objects).
 */
function refusedBy(err: unknown): boolean {
  // S3's SDK says the status in `$metadata`; GCS's (gaxios) in `status` on uploads, `code` on JSON API calls.
  const e = err as { name?: string; code?: unknown; status?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? [e.status, e.code].find((value) => typeof value === 'number');
  return (
    status === 401 ||
    status === 403 ||
    (e.name !== undefined && S3_REFUSALS.has(e.name)) ||
    (e.$metadata === undefined && status === 404)
  );
}

/** Where the bucket `code` fails on is configured: what its refusal tells the operator or tenant to fix. */
interface BucketSettings {
  /** The bucket's URL. */
  where: string;
  /** The settings that choose it and its credentials, e.g. `STORAGE_URL` or the tenant's `storage_url`/`storage_credentials`. */
  settings: string;
}

/**
 * A bucket's failure as an outage of `where` (refused, timed out, 5xx), which the recovery sweep
 * retries once that bucket answers again. A bucket that answers with a refusal (bad credentials,
 * no permission, no such bucket) fails the job at once, naming the settings to fix, in words
 * that do not say which it was: a tenant must not learn from them which buckets exist (the server
 * log has the details). A connection the egress policy refused fails at once too. Our own errors
 * (a bad spool, a missing object, a key that does not decrypt) pass through: a bucket that
 * answers would not change them.
 */
function asOutage(outage: Outage, bucket: BucketSettings, err: unknown, log: Logger): unknown {
  const code = errorCode(err);
  if (code === 'ERR_EGRESS_REFUSED' || code === 'ERR_STORAGE_REFUSED') {
    const { message } = err as Error;
    return new UnrecoverableError(message.startsWith(code) ? message : `${code}: ${message}`);
  }
  if (code !== undefined) return err;
  if (refusedBy(err)) {
    log.warn({ bucket: bucket.where, err }, 'a bucket refused access');
    return new UnrecoverableError(
      `ERR_STORAGE_REFUSED: ${bucket.where} refused access (credentials, permissions or bucket name): check ${bucket.settings}`,
    );
  }
  return new CallrecError(outage, `${outage}: ${bucket.where} did not answer: ${(err as Error).message}`, {
    cause: err,
  });
}

/** Runs a step against a bucket, its failure marked as that bucket's outage or refusal (see `asOutage`). */
async function reaching<T>(code: Outage, bucket: BucketSettings, log: Logger, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw asOutage(code, bucket, err, log);
  }
}

/** Chunks read from a shipped spool, failures marked as the spool bucket's (the encoder's own stay as they are). */
async function* fromSpoolBucket(
  bucket: BucketSettings,
  log: Logger,
  chunks: AsyncIterable<Int16Array>,
): AsyncGenerator<Int16Array> {
  try {
    yield* chunks;
  } catch (err) {
    throw asOutage('ERR_SPOOL_UNREACHABLE', bucket, err, log);
  }
}

/** A shipped spool's bucket: the operator's SPOOL_URL. */
const spoolBucket = (where: string): BucketSettings => ({ where, settings: "SPOOL_URL and the node's credentials" });

/** Encodes `pcm` into `file` (created or truncated), each chunk at its position. */
async function encodeToFile(file: string, format: RecordingFormat, pcm: PcmFile, threads: number): Promise<void> {
  const out = await fs.open(file, 'w', 0o600);
  try {
    for await (const { position, data } of encodeRecording(format, pcm, { threads })) {
      await out.write(data, 0, data.length, position);
    }
    await out.sync();
  } finally {
    await out.close();
  }
}

/**
 * The waveform of the PCM being encoded, in a pass of its own over the spool: the encoder reads
 * it in parallel parts (and may start again), so tapping its reads would not see it once, in order.
 */
async function waveformOf(pcm: PcmFile): Promise<PeaksDocument> {
  const peaks = new WaveformPeaks(pcm.channels, pcm.sampleRate, pcm.frames);
  for await (const chunk of pcm.read(0, pcm.frames)) peaks.push(chunk);
  return peaksDocument(pcm.channels, peaks.result());
}

/**
 * Finalize a recording: spool → encode (and waveform peaks) → encrypt → store → `ready`, then
 * delete the spool. The peaks go beside the audio, encrypted under its data key.
 * Idempotent: a recording already `ready` is left alone, and the object key is fixed per
 * recording (and written atomically by the store), so a retry replaces rather than duplicates.
 * Plain audio exists only on the worker's local disk, never in the bucket.
 */
export function createRecordingProcessor(deps: RecordingProcessorDeps) {
  const { store, keyring } = deps;
  const evidence = new Evidence(store, keyring);
  const threads = deps.encodeThreads ?? os.availableParallelism();
  return async function processRecording(job: Job<RecordingJobData>): Promise<RecordingJobResult | null> {
    const { recordingId, tenantId, callId } = job.data;
    // Every line of the job names its call and tenant, like the call's own lines on the media node.
    const log = deps.log.child({ tenantId, callId, recordingId });
    const recording = await store.recordings.get(recordingId);
    if (!recording || recording.status === 'ready' || recording.status === 'deleted') return null;
    // A spool its node never closed (killed) lost what followed it, until that node was last seen.
    const call = await store.calls.get(recording.tenantId, recording.callId);
    const shippedTo = recording.spoolUrl;
    const open = () => openSpoolSource(recording, call?.endedAt ?? null, { keyring, ...deps.spools });
    const source =
      shippedTo === null ? await open() : await reaching('ERR_SPOOL_UNREACHABLE', spoolBucket(shippedTo), log, open);
    // Retrying cannot bring a spool back: fail at once, saying so (`callrec jobs retry` once it is restored).
    if (!source) {
      const where = recording.spoolUrl === null ? "this node's disk" : `this node's disk or ${recording.spoolUrl}`;
      throw new UnrecoverableError(
        `ERR_NO_SPOOL: the spool of recording ${recordingId} (${recording.spoolPath ?? 'none'}) is not on ${where}`,
      );
    }
    await store.recordings.update(recordingId, { status: 'processing', attempts: job.attemptsMade + 1 });

    const { info } = source;
    const read: SpoolSource['read'] =
      shippedTo === null
        ? source.read
        : (start, end) => fromSpoolBucket(spoolBucket(shippedTo), log, source.read(start, end));
    const pcm = spoolPcm({ info, read }, recording.channels === 1 ? 1 : 2);
    const encoded = `${source.scratch}.${recording.format}`;
    try {
      await encodeToFile(encoded, recording.format, pcm, threads);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_MP3_JOIN') throw err;
      // Parts of a parallel MP3 encoding found no seamless join: rare, and one encoder always works.
      log.warn({ err }, 'encoding again in one part');
      await encodeToFile(encoded, recording.format, pcm, 1);
    }

    const hash = createHash('sha256');
    for await (const chunk of createReadStream(encoded)) hash.update(chunk as Buffer);
    const sha256 = hash.digest('hex');
    const { size } = await fs.stat(encoded);
    const storage = await reaching(
      'ERR_STORAGE_UNREACHABLE',
      { where: "the tenant's bucket", settings: "the tenant's storage_url and storage_credentials" },
      log,
      () => deps.storage.forTenant(recording.tenantId),
    );
    const objectKey = objectKeyFor(
      recording.tenantId,
      recording.callId,
      recording.id,
      recording.format,
      recording.createdAt,
    );
    // A fresh data key per recording, wrapped by the master key or, if the tenant holds its own
    // keys, by the tenant's public key (then only the tenant can decrypt).
    const dataKey = newDataKey();
    const publicKey = (await store.tenants.get(recording.tenantId))?.settings.public_key;
    const wrapped: WrappedKey =
      typeof publicKey === 'string' ? wrapForTenant(dataKey, publicKey) : keyring.wrap(dataKey);
    const peaks = await waveformOf(pcm);
    const settings =
      storage === deps.storage.default
        ? "STORAGE_URL and the node's credentials"
        : "the tenant's storage_url and storage_credentials";
    await reaching('ERR_STORAGE_UNREACHABLE', { where: storage.url, settings }, log, async () => {
      await putPeaks(storage, objectKey, dataKey, wrapped.keyId, peaks);
      const body = encryptStream(dataKey, { keyId: wrapped.keyId });
      // A put that fails without consuming its body must still close the file: destroying the
      // body ends the pipeline, which closes the file stream.
      const upload = storage.put(objectKey, body).catch((err: unknown) => {
        body.destroy(err as Error);
        throw err;
      });
      await Promise.all([pipeline(createReadStream(encoded), body), upload]);
    });
    const durationMs = Math.round((info.frames * 1000) / info.sampleRate);
    // What the call lost as it ran (full disk, late frames) and what the spool lacks now (a crash).
    const lostSpans = mergeLostSpans(recording.lostSpans, source.lostSpans);
    const ready = await store.recordings.update(recordingId, {
      status: 'ready',
      objectKey,
      storageUrl: storage.url,
      keyId: wrapped.keyId,
      wrappedKey: wrapped.wrapped,
      byteSize: size,
      sha256,
      durationMs,
      error: null,
      readyAt: new Date().toISOString(),
      complete: recording.complete && lostSpans.length === 0,
      lostSpans,
    });
    await fs.rm(encoded, { force: true });
    // The recording is safe: a spool left behind (the bucket failing now) is only garbage.
    await source.remove().catch((err: Error) => log.warn({ err }, 'could not delete the spool'));
    if (ready) {
      // Signed once stored and marked ready; should signing fail here, the evidence sweep signs it (`signed_later`).
      await evidence.seal(ready).catch((err: Error) => log.error({ err }, 'could not sign the recording manifest'));
      await emitRecordingEvent(deps.webhooks, 'recording.completed', ready);
    }
    log.info({ objectKey, durationMs, byteSize: size }, 'recording ready');
    return { objectKey, byteSize: size, durationMs };
  };
}

/** Whether this failure is the job's last: out of attempts, or one retrying cannot help. */
export function isLastFailure(job: Job<RecordingJobData>, err: Error): boolean {
  return job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
}

/** Called when a job fails: after its last attempt (or an unrecoverable failure) the recording is `failed` (spool kept) and `recording.failed` goes out. */
export async function recordFailure(
  deps: Pick<RecordingProcessorDeps, 'store' | 'webhooks'>,
  job: Job<RecordingJobData>,
  err: Error,
): Promise<void> {
  if (!isLastFailure(job, err)) return;
  const failed = await deps.store.recordings.update(job.data.recordingId, {
    status: 'failed',
    error: err.message,
    attempts: job.attemptsMade,
  });
  if (failed) await emitRecordingEvent(deps.webhooks, 'recording.failed', failed);
}
