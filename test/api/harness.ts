import type { MasterKeyring } from '../../src/crypto/keys.js';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { apiPlugin } from '../../src/api/index.js';
import type { CallControl, ControlAction, ControlResult } from '../../src/calls/control.js';
import type { LocalObjectStore } from '../../src/storage/local.js';
import { apiServices } from '../helpers/api-deps.js';
import { putEncrypted } from '../helpers/recordings.js';
import { putPeaks } from '../../src/recording/peaks.js';
import type { RecordingStatus, Store } from '../../src/store/index.js';
import { createTestStore, type TestDbKind } from '../helpers/db.js';

const OUTCOMES: Record<ControlAction, ControlResult['recordingStatus']> = {
  start: 'recording',
  stop: 'processing',
  pause: 'paused',
  resume: 'recording',
};

/**
 * A stand-in for the control bus: the API's dependency, not the code under test here (the
 * real one is tested end to end). Answers each action with its usual outcome, or rejects
 * with `failNext` once.
 */
export class ScriptedControl implements CallControl {
  readonly requests: { tenantId: string; callId: string; action: ControlAction }[] = [];
  failNext: Error | null = null;

  async control(tenantId: string, callId: string, action: ControlAction): Promise<ControlResult> {
    this.requests.push({ tenantId, callId, action });
    const failure = this.failNext;
    this.failNext = null;
    if (failure) throw failure;
    return { recordingStatus: OUTCOMES[action] };
  }
}

export interface ApiResponse {
  status: number;
  // Bodies are untyped JSON; the assertions that read them are the check.
  body: any;
}

export interface ApiHarness {
  /** `http://127.0.0.1:port` */
  url: string;
  store: Store;
  storage: LocalObjectStore;
  /** Wraps the recordings' data keys and seals the signing keys. */
  keyring: MasterKeyring;
  control: ScriptedControl;
  /** Sends a JSON request with `Authorization: Bearer <secret>` (none when `secret` is null). */
  request(method: string, url: string, secret: string | null, body?: unknown): Promise<ApiResponse>;
  /** A call of `tenantId`, live or ended, with optionally a recording in `status` (a `ready` one has a real object). */
  addCall(
    tenantId: string,
    id: string,
    opts?: { ended?: boolean; recording?: RecordingStatus },
  ): Promise<{ objectKey: string | null }>;
  close(): Promise<void>;
}

/**
 * The API plugin alone on a real port, over a fresh database and a real local object store.
 * `hooks` adds root hooks before the plugin is registered (they apply to its routes).
 */
export async function startApi(kind: TestDbKind, hooks?: (app: FastifyInstance) => void): Promise<ApiHarness> {
  const db = await createTestStore(kind);
  const { store } = db;
  const storageDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-api-'));
  const services = await apiServices(store, storageDir);
  const { objects: storage, keyring } = services;
  const control = new ScriptedControl();
  const app: FastifyInstance = Fastify({ logger: false });
  hooks?.(app);
  await app.register(apiPlugin, {
    store,
    storage: services.storage,
    egress: services.webhooks.egress,
    keyring,
    webhooks: services.webhooks,
    transcodes: services.transcodes,
    control,
    readiness: async () => ({ db: true }),
    // The auth matrix makes hundreds of failed attempts from one address; limits have tests of their own (e2e/http-hardening).
    limits: { requestsPerKeyPerMinute: 1_000_000, authFailuresPerIpPerMinute: 1_000_000 },
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });

  return {
    url: base,
    store,
    storage,
    keyring,
    control,
    async request(method, url, secret, body) {
      const res = await fetch(base + url, {
        method,
        headers: {
          ...(secret === null ? {} : { authorization: `Bearer ${secret}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const json =
        res.headers.get('content-type')?.startsWith('application/json') && text !== '' ? JSON.parse(text) : text;
      return { status: res.status, body: json };
    },
    async addCall(tenantId, id, opts = {}) {
      await store.calls.create({
        tenantId,
        id,
        agentId: 'agent-1',
        provider: 'twilio',
        mode: 'fork',
        sampleRate: 8000,
        legs: ['caller', 'agent'],
        settings: CALL_RECORDING_DEFAULTS,
      });
      if (opts.ended) await store.calls.update(tenantId, id, { status: 'ended', endedAt: new Date().toISOString() });
      if (!opts.recording) return { objectKey: null };
      const recording = await store.recordings.create({
        tenantId,
        callId: id,
        format: 'mp3',
        channels: 1,
        sampleRate: 8000,
        storageDays: 90,
      });
      if (opts.recording !== 'ready') {
        await store.recordings.update(recording.id, { status: opts.recording });
        return { objectKey: null };
      }
      const audio = Buffer.from(`audio of ${id}`);
      const object = await putEncrypted(storage, keyring, `${tenantId}/${id}/${recording.id}.mp3.enc`, audio);
      // Its waveform beside it, as the worker leaves one.
      const dataKey = keyring.unwrap({ keyId: object.keyId, wrapped: object.wrappedKey });
      await putPeaks(storage, object.objectKey, dataKey, object.keyId, {
        duration: 0.01,
        channels: ['mix'],
        peaks: [[0.5]],
      });
      await store.recordings.update(recording.id, {
        status: opts.recording,
        ...object,
        sha256: createHash('sha256').update(audio).digest('hex'),
        byteSize: audio.length,
        durationMs: 10,
      });
      return { objectKey: object.objectKey };
    },
    async close() {
      await app.close();
      await services.close();
      await db.cleanup();
      await fs.rm(storageDir, { recursive: true, force: true });
    },
  };
}
