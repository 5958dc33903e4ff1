import { Type } from '@sinclair/typebox';
import type { RecordingFormat } from '../../media/types.js';
import { principalOf } from '../auth/plugin.js';
import type { Readable } from 'node:stream';
import { openEncrypted, type EncryptedObject } from '../crypto/chunked.js';
import { transcode } from '../recording/transcode.js';
import type { TranscodeCache } from '../recording/transcode-cache.js';
import type { Recording } from '../store/index.js';
import { CallrecError } from '../errors.js';
import { CallParams } from './calls.js';
import { HttpError } from '../errors.js';
import { notFound } from './errors.js';
import { parseRange } from './range.js';
import type { ApiDeps, ApiInstance } from './types.js';
import { emitRecordingEvent } from '../webhooks/index.js';

const CONTENT_TYPES: Record<RecordingFormat, string> = { mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg' };

const RecordingQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('mp3'), Type.Literal('wav'), Type.Literal('ogg')])),
  download: Type.Optional(Type.Boolean()),
});

/**
 * `GET /api/calls/{id}/recording`: the audio, seekable with `Range`, every read access-logged.
 * `DELETE /api/calls/{id}/recording`: removes the object and leaves a tombstone; 423 on legal hold.
 */
/** Bytes of a recording that a response can serve whole or by range. */
interface ServedAudio {
  size: number;
  read(start: number, end: number): Promise<Readable>;
}

function encryptedAudio(object: EncryptedObject): ServedAudio {
  return { size: object.plainLength, read: (start, end) => object.read(start, end) };
}

/** Another format than the stored one: transcoded once into the cache, then served from there. */
async function transcodedAudio(object: EncryptedObject, recording: Recording, to: RecordingFormat, transcodes: TranscodeCache): Promise<ServedAudio> {
  const { size, read } = await transcodes.get(recording.id, to, async (out) =>
    transcode(recording.format, await object.read(0, object.plainLength - 1), to, out),
  );
  return { size, read: async (start, end) => read(start, end) };
}

export function recordingRoutes(app: ApiInstance, { store, storage, keyring, webhooks, transcodes }: ApiDeps): void {
  app.get(
    '/api/calls/:callId/recording',
    { schema: { params: CallParams, querystring: RecordingQuery }, config: { scopes: ['recordings:read'] } },
    async (request, reply) => {
      const principal = principalOf(request);
      const { callId } = request.params;
      const call = await store.calls.get(principal.tenantId, callId);
      if (!call) throw notFound(`call ${callId}`);
      const recording = await store.recordings.getByCall(principal.tenantId, callId);
      if (!recording || recording.status === 'deleted') throw notFound(`recording of call ${callId}`);
      if (recording.status !== 'ready') {
        throw new HttpError('ERR_NOT_READY', `the recording is not ready (status ${recording.status})`, {
          details: { status: recording.status },
        });
      }
      const key = recording.objectKey;
      const objects = await storage.forRecording(recording);
      const objectSize = key === null ? null : await objects.size(key);
      if (key === null || objectSize === null || recording.keyId === null || recording.wrappedKey === null) {
        // A ready recording without its object is our inconsistency, not the client's.
        throw new CallrecError('ERR_OBJECT_MISSING', `recording ${recording.id} is ready but its object is missing`);
      }
      if (recording.keyId.startsWith('tenant:')) {
        // Wrapped with the tenant's public key: callrec cannot decrypt it, by design.
        throw new HttpError('ERR_TENANT_ENCRYPTED', "this recording's key is wrapped with the tenant's public key; fetch the object and unwrap the key with the tenant's private key", {
          details: { storage_url: recording.storageUrl, object_key: key, key_id: recording.keyId, wrapped_key: recording.wrappedKey },
        });
      }
      // Decrypted on the fly: a range reads only the chunks holding it.
      const dataKey = await keyring.unwrapFresh({ keyId: recording.keyId, wrapped: recording.wrappedKey });
      const stored = await openEncrypted(dataKey, objectSize, (r) => objects.get(key, r));
      const format = request.query.format ?? recording.format;
      const audio = format === recording.format ? encryptedAudio(stored) : await transcodedAudio(stored, recording, format, transcodes);
      const size = audio.size;
      const rangeHeader = request.headers.range;
      const range = parseRange(rangeHeader, size);
      if (range === 'unsatisfiable') {
        throw new HttpError('ERR_RANGE_NOT_SATISFIABLE', `range ${rangeHeader} is outside the ${size}-byte recording`, {
          headers: { 'Content-Range': `bytes */${size}` },
        });
      }
      // Logged before the first byte goes out: a read that is not in the log must not happen.
      // When the database cannot take it (full disk) the entry goes to the process log
      // instead, so reading keeps working and the read is still on record.
      const access = {
        tenantId: principal.tenantId,
        keyId: principal.keyId,
        callId,
        recordingId: recording.id,
        format,
        range: range ? rangeHeader! : null,
        ip: request.ip,
      };
      await store.accessLog.add(access).catch((err: unknown) => {
        request.log.error({ err: (err as Error).message, access }, 'access log not writable; recording this read here instead');
      });
      const body = await audio.read(range?.start ?? 0, range?.end ?? size - 1);

      reply.header('Content-Type', CONTENT_TYPES[format]).header('Accept-Ranges', 'bytes').header('Cache-Control', 'private, no-store');
      if (request.query.download) {
        const filename = `${callId.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}`;
        reply.header('Content-Disposition', `attachment; filename="${filename}"`);
      }
      if (range) {
        reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`).header('Content-Length', range.end - range.start + 1);
      } else {
        reply.header('Content-Length', size);
      }
      return reply.send(body);
    },
  );

  app.delete(
    '/api/calls/:callId/recording',
    { schema: { params: CallParams }, config: { scopes: ['recordings:delete'] } },
    async (request) => {
      const { tenantId, keyId } = principalOf(request);
      const { callId } = request.params;
      const recording = await store.recordings.getByCall(tenantId, callId);
      const objects = recording ? await storage.forRecording(recording) : storage.default;
      const { recording: deleted } = await store.recordings.delete(tenantId, callId, objects, { deletedBy: keyId, reason: 'api' });
      await transcodes.evict(deleted.id);
      await emitRecordingEvent(webhooks, 'recording.deleted', deleted);
      return { call_id: callId, recording_status: 'deleted' };
    },
  );
}
