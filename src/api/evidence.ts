import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Type } from 'typebox';
import { principalOf } from '../auth/plugin.js';
import { openEncrypted } from '../crypto/chunked.js';
import type { Evidence } from '../evidence/index.js';
import { evidenceZip, ledgerExtract } from '../evidence/package.js';
import { CallParams } from './calls.js';
import { notFound } from './errors.js';
import { readyRecording, recordAccess, storedObject } from './recordings.js';
import type { ApiDeps, ApiInstance } from './types.js';

const KeySetResponse = Type.Object({
  keys: Type.Array(
    Type.Object({
      kty: Type.Literal('OKP'),
      crv: Type.Literal('Ed25519'),
      x: Type.String(),
      kid: Type.String(),
      alg: Type.Literal('EdDSA'),
      use: Type.Literal('sig'),
    }),
  ),
});

/** Non-JSON bodies, described for the OpenAPI document (the serializer leaves them alone). */
const MANIFEST = {
  description: 'the compact JWS; header Callrec-Timestamp says whether TSA_URL stamped it',
  content: { 'application/jose': { schema: { type: 'string' } } },
};
const PACKAGE = {
  description: 'the ZIP',
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
};

/**
 * Evidence (SPEC §9): the public key set, a recording's signed manifest, and the package a third
 * party verifies offline.
 */
export function evidenceRoutes(app: ApiInstance, deps: ApiDeps, evidence: Evidence): void {
  const { store } = deps;

  app.get(
    '/.well-known/callrec-keys.json',
    {
      schema: {
        operationId: 'getSigningKeys',
        summary: 'The public keys manifests are signed with (JWKS), current and retired',
        response: { 200: KeySetResponse },
      },
      config: { public: true },
    },
    async (_request, reply) => {
      reply.header('Cache-Control', 'public, max-age=300');
      return evidence.keys.keySet();
    },
  );

  /** The manifest of the call's ready recording; 404 until it is signed. */
  async function manifestOf(tenantId: string, callId: string) {
    const recording = await readyRecording(store, tenantId, callId, null);
    const manifest = await store.evidence.manifest(recording.id);
    if (!manifest) throw notFound(`manifest of the recording of call ${callId}`);
    return { recording, manifest };
  }

  app.get(
    '/api/calls/:callId/recording/manifest',
    {
      schema: {
        operationId: 'getRecordingManifest',
        summary: "The recording's signed manifest: a compact JWS (EdDSA) over RFC 8785 JSON; 404 until it is signed",
        params: CallParams,
        response: { 200: MANIFEST },
      },
      config: { scopes: ['recordings:read'] },
    },
    async (request, reply) => {
      const { manifest } = await manifestOf(principalOf(request).tenantId, request.params.callId);
      // Pending while TSA_URL is set and its authority has not stamped the manifest yet.
      reply.header('Callrec-Timestamp', manifest.tsa_token === null ? 'none' : 'stamped');
      return reply
        .header('Content-Type', 'application/jose')
        .header('Cache-Control', 'private, no-store')
        .send(manifest.jws);
    },
  );

  /** The consent prompt the call played, as the package carries it. */
  async function promptOf(callId: string, tenantId: string) {
    const sha256 = (await store.calls.get(tenantId, callId))?.consent?.prompt_audio_sha256;
    const kept = typeof sha256 === 'string' ? await store.evidence.promptAudio(sha256) : undefined;
    return kept && { name: `consent-prompt.${kept.format.replace('/', '-')}.raw`, audio: kept.audio };
  }

  app.get(
    '/api/calls/:callId/evidence',
    {
      schema: {
        operationId: 'getEvidencePackage',
        summary:
          'The evidence package (ZIP): stored audio, manifest, key set, consent prompt, ledger extract, time-stamp, VERIFY.txt; logged as an access',
        params: CallParams,
        response: { 200: PACKAGE },
      },
      config: { scopes: ['recordings:read'] },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { callId } = request.params;
      const { recording, manifest } = await manifestOf(principal.tenantId, callId);
      const { objects, key, size, dataKey } = await storedObject(deps, recording);
      // An export is an access like a download: on record before any byte goes out.
      await recordAccess(
        store,
        evidence,
        {
          tenantId: principal.tenantId,
          keyId: principal.keyId,
          callId,
          recordingId: recording.id,
          format: recording.format,
          range: null,
          ip: request.ip,
        },
        request.log,
        'evidence',
      );
      const stored = await openEncrypted(dataKey, size, (r) => objects.get(key, r));
      const audio = await buffer(await stored.read(0, stored.plainLength - 1));
      const zip = evidenceZip({
        audioName: `recording.${recording.format}`,
        audio,
        manifest: manifest.jws,
        keys: await evidence.keys.keySet(),
        ledger: await ledgerExtract(store, principal.tenantId, recording.id),
        prompt: await promptOf(recording.callId, principal.tenantId),
        timestamp: manifest.tsa_token === null ? undefined : Buffer.from(manifest.tsa_token, 'base64'),
      });
      const filename = `${callId.replace(/[^A-Za-z0-9._-]/g, '_')}-evidence.zip`;
      return reply
        .header('Content-Type', 'application/zip')
        .header('Content-Disposition', `attachment; filename="${filename}"`)
        .header('Cache-Control', 'private, no-store')
        .header('Content-Length', zip.length)
        .send(Readable.from([Buffer.from(zip)]));
    },
  );
}
