import { Type } from 'typebox';
import { StringEnum } from '../schemas.js';
import type { RecordingFormat } from '../../media/types.js';
import type { PlaybackGrant, PlaybackTokens } from '../auth/playback.js';
import { principalOf } from '../auth/plugin.js';
import type { Readable } from 'node:stream';
import { openEncrypted, type EncryptedObject } from '../crypto/chunked.js';
import { readPeaks } from '../recording/peaks.js';
import { transcode } from '../recording/transcode.js';
import type { TranscodeCache } from '../recording/transcode-cache.js';
import type { ObjectStore } from '../storage/types.js';
import type { Recording } from '../store/index.js';
import { CallrecError, HttpError } from '../errors.js';
import { CallParams } from './calls.js';
import { notFound } from './errors.js';
import { parseRange } from './range.js';
import type { ApiDeps, ApiInstance } from './types.js';
import { emitRecordingEvent } from '../webhooks/index.js';
import type { Evidence } from '../evidence/index.js';
import type { AccessRecord } from '../evidence/ledger.js';
import type { NewAccessLogEntry } from '../store/index.js';
import type { FastifyBaseLogger } from 'fastify';

const CONTENT_TYPES: Record<RecordingFormat, string> = { mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg' };

const Format = StringEnum(['mp3', 'wav', 'ogg'], { description: "default: the recording's own" });

const RecordingQuery = Type.Object({
  format: Type.Optional(Format),
  download: Type.Optional(
    Type.Boolean({ description: 'sets Content-Disposition: attachment; filename="{call_id}.{format}"' }),
  ),
  token: Type.Optional(
    Type.String({
      description: 'a playback token from POST /api/calls/{call_id}/recording/url, instead of Authorization',
    }),
  ),
});

const PlaybackUrlBody = Type.Object(
  { format: Type.Optional(Format), download: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

const PlaybackUrlResponse = Type.Object({
  url: Type.String({ description: 'GET it without Authorization: one recording, one format, until expires_at' }),
  expires_at: Type.String({ format: 'date-time' }),
});

const PeaksResponse = Type.Object({
  duration: Type.Number({ description: 'seconds' }),
  channels: Type.Array(StringEnum(['caller', 'agent', 'mix']), {
    description: '["caller", "agent"] for dual-channel recordings, ["mix"] for mono',
  }),
  peaks: Type.Array(Type.Array(Type.Number({ minimum: 0, maximum: 1 })), {
    description: 'per channel, peak |amplitude| per bucket: at most 100 a second and 4000 in all',
  }),
});

/** The audio in each format, whole (200) or the range asked for (206). */
const AUDIO = {
  description: 'the audio; with Range, 206 and the bytes asked for',
  content: Object.fromEntries(
    Object.values(CONTENT_TYPES).map((type) => [type, { schema: { type: 'string', format: 'binary' } }]),
  ),
};

const DeletedResponse = Type.Object({ call_id: Type.String(), recording_status: Type.Literal('deleted') });

/** Bytes of a recording that a response can serve whole or by range. */
interface ServedAudio {
  size: number;
  read(start: number, end: number): Promise<Readable>;
}

function encryptedAudio(object: EncryptedObject): ServedAudio {
  return { size: object.plainLength, read: (start, end) => object.read(start, end) };
}

/** Another format than the stored one: transcoded once into the cache, then served from there. */
async function transcodedAudio(
  object: EncryptedObject,
  recording: Recording,
  to: RecordingFormat,
  transcodes: TranscodeCache,
): Promise<ServedAudio> {
  const { size, read } = await transcodes.get(recording.id, to, recording.tenantId, async (out) =>
    transcode(recording.format, await object.read(0, object.plainLength - 1), to, out),
  );
  return { size, read: async (start, end) => read(start, end) };
}

/**
 * Puts a read on record, in the access log and the tenant's ledger, before its first byte goes
 * out: a read that is not on record must not happen. When the database cannot take it (full
 * disk) the entry goes to the process log instead, so reading keeps working and the read is
 * still on record.
 */
export async function recordAccess(
  store: ApiDeps['store'],
  evidence: Evidence,
  access: NewAccessLogEntry,
  log: FastifyBaseLogger,
  purpose: AccessRecord['purpose'] = 'read',
): Promise<void> {
  try {
    await store.accessLog.add(access);
    const { tenantId, keyId, callId, recordingId, format, range, ip } = access;
    await evidence.recordAccess(tenantId, {
      recording_id: recordingId,
      call_id: callId,
      key_id: keyId,
      format,
      range,
      ip,
      purpose,
      at: new Date().toISOString(),
    });
  } catch (err) {
    log.error({ err, access }, 'access log not writable; recording this read here instead');
  }
}

/**
 * The call's recording if it is ready: 404 without one, 409 while it is in the works. A
 * playback grant must name this very recording: one deleted or recorded anew since is a 403.
 */
export async function readyRecording(
  store: ApiDeps['store'],
  tenantId: string,
  callId: string,
  grant: PlaybackGrant | null,
): Promise<Recording> {
  const call = await store.calls.get(tenantId, callId);
  if (!call) throw notFound(`call ${callId}`);
  const recording = await store.recordings.getByCall(tenantId, callId);
  if (grant && (recording?.id !== grant.recordingId || recording.status === 'deleted')) {
    throw new HttpError(
      'ERR_TOKEN_STALE',
      'the recording this playback token was issued for has been deleted or replaced',
    );
  }
  if (!recording || recording.status === 'deleted') throw notFound(`recording of call ${callId}`);
  if (recording.status !== 'ready') {
    throw new HttpError('ERR_NOT_READY', `the recording is not ready (status ${recording.status})`, {
      details: { status: recording.status },
    });
  }
  return recording;
}

/** Where a ready recording's object is, its size, and its data key; 409 when only the tenant can unwrap the key. */
export async function storedObject(
  { storage, keyring }: Pick<ApiDeps, 'storage' | 'keyring'>,
  recording: Recording,
): Promise<{ objects: ObjectStore; key: string; size: number; dataKey: Buffer }> {
  const key = recording.objectKey;
  const objects = await storage.forRecording(recording);
  const size = key === null ? null : await objects.size(key);
  if (key === null || size === null || recording.keyId === null || recording.wrappedKey === null) {
    // A ready recording without its object is our inconsistency, not the client's.
    throw new CallrecError('ERR_OBJECT_MISSING', `recording ${recording.id} is ready but its object is missing`);
  }
  if (recording.keyId.startsWith('tenant:')) {
    // Wrapped with the tenant's public key: callrec cannot decrypt it, by design.
    throw new HttpError(
      'ERR_TENANT_ENCRYPTED',
      "this recording's key is wrapped with the tenant's public key; fetch the object and unwrap the key with the tenant's private key",
      {
        details: {
          storage_url: recording.storageUrl,
          object_key: key,
          key_id: recording.keyId,
          wrapped_key: recording.wrappedKey,
        },
      },
    );
  }
  const dataKey = await keyring.unwrapFresh({ keyId: recording.keyId, wrapped: recording.wrappedKey });
  return { objects, key, size, dataKey };
}

/**
 * `GET /api/calls/{id}/recording`: the audio, seekable with `Range`, every read access-logged;
 * with an API key, or a playback token from `POST /api/calls/{id}/recording/url`.
 * `GET /api/calls/{id}/recording/peaks`: the waveform computed when the recording was finalized.
 * `DELETE /api/calls/{id}/recording`: removes the object and leaves a tombstone; 423 on legal hold.
 */
export function recordingRoutes(
  app: ApiInstance,
  { store, storage, keyring, webhooks, transcodes }: ApiDeps,
  playback: PlaybackTokens,
  evidence: Evidence,
): void {
  app.get(
    '/api/calls/:callId/recording',
    {
      schema: {
        operationId: 'getRecordingAudio',
        summary: "The recording's audio, decrypted on the fly; Range gives 206",
        params: CallParams,
        querystring: RecordingQuery,
        response: { 200: AUDIO, 206: AUDIO },
      },
      config: { scopes: ['recordings:read'], playbackToken: true },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { callId } = request.params;
      const grant = request.playback;
      if (grant && grant.callId !== callId)
        throw new HttpError('ERR_TOKEN_MISMATCH', `this playback token is for another call, not ${callId}`);
      const recording = await readyRecording(store, principal.tenantId, callId, grant);
      const { objects, key, size: objectSize, dataKey } = await storedObject({ storage, keyring }, recording);
      // Decrypted on the fly: a range reads only the chunks holding it.
      const stored = await openEncrypted(dataKey, objectSize, (r) => objects.get(key, r));
      const format = request.query.format ?? recording.format;
      if (grant && grant.format !== format)
        throw new HttpError(
          'ERR_TOKEN_MISMATCH',
          `this playback token is for the ${grant.format} format, not ${format}`,
        );
      const audio =
        format === recording.format
          ? encryptedAudio(stored)
          : await transcodedAudio(stored, recording, format, transcodes);
      const size = audio.size;
      const rangeHeader = request.headers.range;
      const range = parseRange(rangeHeader, size);
      if (range === 'unsatisfiable') {
        throw new HttpError('ERR_RANGE_NOT_SATISFIABLE', `range ${rangeHeader} is outside the ${size}-byte recording`, {
          headers: { 'Content-Range': `bytes */${size}` },
        });
      }
      const access = {
        tenantId: principal.tenantId,
        keyId: principal.keyId,
        callId,
        recordingId: recording.id,
        format,
        range: range ? rangeHeader! : null,
        ip: request.ip,
      };
      await recordAccess(store, evidence, access, request.log);
      const body = await audio.read(range?.start ?? 0, range?.end ?? size - 1);

      reply
        .header('Content-Type', CONTENT_TYPES[format])
        .header('Accept-Ranges', 'bytes')
        .header('Cache-Control', 'private, no-store');
      if (request.query.download) {
        const filename = `${callId.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}`;
        reply.header('Content-Disposition', `attachment; filename="${filename}"`);
      }
      if (range) {
        reply
          .code(206)
          .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
          .header('Content-Length', range.end - range.start + 1);
      } else {
        reply.header('Content-Length', size);
      }
      return reply.send(body);
    },
  );

  app.post(
    '/api/calls/:callId/recording/url',
    {
      schema: {
        operationId: 'createPlaybackUrl',
        summary:
          'A short-lived URL that plays one format of the recording without Authorization (for an <audio> element)',
        params: CallParams,
        body: PlaybackUrlBody,
        response: { 200: PlaybackUrlResponse },
      },
      config: { scopes: ['recordings:read'] },
    },
    async (request) => {
      const { tenantId, keyId } = principalOf(request);
      const { callId } = request.params;
      const recording = await readyRecording(store, tenantId, callId, null);
      const format = request.body.format ?? recording.format;
      const { token, expiresAt } = playback.mint({ tenantId, keyId, callId, recordingId: recording.id, format });
      const query = new URLSearchParams({ format, token });
      if (request.body.download) query.set('download', '1');
      return {
        url: `/api/calls/${encodeURIComponent(callId)}/recording?${query}`,
        expires_at: expiresAt.toISOString(),
      };
    },
  );

  app.get(
    '/api/calls/:callId/recording/peaks',
    {
      schema: {
        operationId: 'getRecordingPeaks',
        summary: "The recording's waveform peaks, computed when it was finalized",
        params: CallParams,
        response: { 200: PeaksResponse },
      },
      config: { scopes: ['recordings:read'] },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const { callId } = request.params;
      const { objects, key, dataKey } = await storedObject(
        { storage, keyring },
        await readyRecording(store, tenantId, callId, null),
      );
      const peaks = await readPeaks(objects, key, dataKey);
      if (peaks === null) throw notFound(`waveform of call ${callId} (recorded before waveforms were kept)`);
      reply.header('Cache-Control', 'private, no-store');
      return peaks;
    },
  );

  app.delete(
    '/api/calls/:callId/recording',
    {
      schema: { operationId: 'deleteRecording', params: CallParams, response: { 200: DeletedResponse } },
      config: { scopes: ['recordings:delete'] },
    },
    async (request) => {
      const { tenantId, keyId } = principalOf(request);
      const { callId } = request.params;
      const recording = await store.recordings.getByCall(tenantId, callId);
      const objects = recording ? await storage.forRecording(recording) : storage.default;
      const { recording: deleted, tombstone } = await store.recordings.delete(tenantId, callId, objects, {
        deletedBy: keyId,
        reason: 'api',
      });
      await evidence.recordDeletion(tombstone);
      await transcodes.evict(deleted.id);
      await emitRecordingEvent(webhooks, 'recording.deleted', deleted);
      return { call_id: callId, recording_status: 'deleted' as const };
    },
  );
}
