import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { apiPlugin } from '../../src/api/index.js';
import type { LocalObjectStore } from '../../src/storage/local.js';
import type { Store } from '../../src/store/index.js';
import { createTestStore, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { apiServices, type ApiServices } from '../helpers/api-deps.js';
import { putEncrypted } from '../helpers/recordings.js';
import { ScriptedControl } from './harness.js';

describe.each(TEST_DB_KINDS)('HTTP API on %s', (kind) => {
  let t: TestStore;
  let store: Store;
  let storage: LocalObjectStore;
  let storageDir: string;
  let services: ApiServices;
  let app: FastifyInstance;
  let base: string;
  let ready: Record<string, boolean>;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestStore(kind);
    store = t.store;
    storageDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-api-'));
    services = await apiServices(store, storageDir);
    storage = services.objects;
    await store.tenants.ensure('t1', 'One');
    await store.tenants.ensure('t2', 'Two');
    const issue = async (name: string, tenantId: string, scopes: Parameters<Store['keys']['create']>[0]['scopes']) =>
      (keys[name] = (await store.keys.create({ tenantId, name, scopes })).secret);
    await issue('admin', 't1', ['admin']);
    await issue('reader', 't1', ['recordings:read']);
    await issue('writer', 't1', ['agents:write']);
    await issue('streamer', 't1', ['media:stream']);
    await issue('other', 't2', ['admin']);
    const revoked = await store.keys.create({ tenantId: 't1', name: 'revoked', scopes: ['admin'] });
    await store.keys.revoke('t1', revoked.key.id);
    keys.revoked = revoked.secret;

    app = Fastify({ logger: false });
    const { storage: resolver, keyring, webhooks, transcodes } = services;
    await app.register(apiPlugin, {
      store,
      storage: resolver,
      egress: webhooks.egress,
      keyring,
      webhooks,
      transcodes,
      control: new ScriptedControl(),
      readiness: async () => ready,
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await app.close();
    await services.close();
    await t.cleanup();
    await fs.rm(storageDir, { recursive: true, force: true });
  });

  function call(method: string, url: string, key: string | null, body?: unknown, headers: Record<string, string> = {}) {
    return fetch(base + url, {
      method,
      headers: {
        ...(key === null ? {} : { authorization: `Bearer ${keys[key] ?? key}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  // Bodies are untyped JSON; the assertions that read them are the check.
  const json = (res: Response): Promise<any> => res.json();

  async function expectError(res: Response, status: number, code: string, field?: string) {
    expect(res.status).toBe(status);
    const body = await json(res);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    if (field !== undefined) expect(body.error.field).toBe(field);
    return body.error;
  }

  describe('health', () => {
    test('healthz is public', async () => {
      const res = await call('GET', '/healthz', null);
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ status: 'ok' });
    });

    test('readyz reports each dependency, 503 when one is down', async () => {
      ready = { db: true, redis: true };
      let res = await call('GET', '/readyz', null);
      expect(res.status).toBe(200);
      expect((await json(res)).checks).toEqual({ db: true, redis: true });
      ready = { db: true, redis: false };
      res = await call('GET', '/readyz', null);
      expect(res.status).toBe(503);
      expect(await json(res)).toMatchObject({ checks: { db: true, redis: false }, failed: ['redis'] });
    });
  });

  describe('authentication and scopes', () => {
    test.each([
      ['no key', null],
      ['an unknown key', 'crk_not-a-real-key'],
      ['a revoked key', 'revoked'],
    ])('%s is 401 with WWW-Authenticate', async (_, key) => {
      const res = await call('GET', '/api/calls', key);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      await expectError(res, 401, 'ERR_UNAUTHORIZED');
    });

    test('a malformed Authorization header is 401', async () => {
      await expectError(
        await call('GET', '/api/calls', null, undefined, { authorization: `Basic ${keys.admin}` }),
        401,
        'ERR_UNAUTHORIZED',
      );
    });

    test('a key without the scope is 403; admin holds every scope', async () => {
      await expectError(await call('GET', '/api/calls', 'streamer'), 403, 'ERR_FORBIDDEN');
      await expectError(await call('PATCH', '/agents/a1', 'reader', {}), 403, 'ERR_FORBIDDEN');
      expect((await call('GET', '/api/calls', 'admin')).status).toBe(200);
    });

    test('unknown routes are 404 in the error format', async () => {
      await expectError(await call('GET', '/api/nothing-here', 'admin'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/nothing-here', null), 404, 'ERR_NOT_FOUND');
    });
  });

  describe('agents', () => {
    const seed = {
      voice_tools: {
        call_recording: {
          enabled: true,
          auto_record: true,
          consent_prompt: true,
          consent_message: 'This call is being recorded for quality and training purposes.',
          dual_channel: false,
          storage_days: 90,
        },
      },
    };

    test('PATCH with the seed body creates the agent and returns every setting', async () => {
      const res = await call('PATCH', '/agents/support-bot', 'writer', seed);
      expect(res.status).toBe(200);
      const agent = await json(res);
      expect(agent).toEqual({
        id: 'support-bot',
        voice_tools: { call_recording: { ...CALL_RECORDING_DEFAULTS, ...seed.voice_tools.call_recording } },
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const audit = await store.agents.audit('t1', 'support-bot');
      expect(audit).toHaveLength(1);
      expect(audit[0].after).toEqual(seed);
    });

    test('PATCH deep-merges: untouched fields keep their values, defaults fill the rest', async () => {
      await call('PATCH', '/api/agents/merge-bot', 'writer', {
        voice_tools: { call_recording: { enabled: true, format: 'wav' } },
      });
      const res = await call('PATCH', '/agents/merge-bot', 'admin', {
        voice_tools: { call_recording: { storage_days: 7, agent_ws_url: 'wss://agent.example/ws' } },
      });
      const settings = (await json(res)).voice_tools.call_recording;
      expect(settings).toEqual({
        ...CALL_RECORDING_DEFAULTS,
        enabled: true,
        format: 'wav',
        storage_days: 7,
        agent_ws_url: 'wss://agent.example/ws',
      });
      const cleared = await call('PATCH', '/agents/merge-bot', 'admin', {
        voice_tools: { call_recording: { agent_ws_url: null } },
      });
      expect((await json(cleared)).voice_tools.call_recording).toMatchObject({
        enabled: true,
        storage_days: 7,
        agent_ws_url: null,
      });
    });

    test('a new agent with an empty PATCH has the defaults', async () => {
      const res = await call('PATCH', '/agents/empty-bot', 'writer', {});
      expect((await json(res)).voice_tools.call_recording).toEqual(CALL_RECORDING_DEFAULTS);
    });

    test('GET on both paths, list, 404 for unknown ids and for another tenant', async () => {
      await call('PATCH', '/agents/get-bot', 'writer', seed);
      const viaRoot = await json(await call('GET', '/agents/get-bot', 'reader'));
      const viaApi = await json(await call('GET', '/api/agents/get-bot', 'writer'));
      expect(viaApi).toEqual(viaRoot);
      expect(viaRoot.voice_tools.call_recording.consent_message).toBe(seed.voice_tools.call_recording.consent_message);
      const list = await json(await call('GET', '/api/agents', 'reader'));
      expect(list.data.map((agent: { id: string }) => agent.id)).toContain('get-bot');
      await expectError(await call('GET', '/agents/nobody', 'reader'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/agents/get-bot', 'other'), 404, 'ERR_NOT_FOUND');
      expect((await json(await call('GET', '/api/agents', 'other'))).data).toEqual([]);
      await expectError(await call('GET', '/agents/get-bot', 'streamer'), 403, 'ERR_FORBIDDEN');
    });

    test('audit lists every change newest first with the key that made it; 404 for unknown and foreign agents', async () => {
      await call('PATCH', '/agents/audited-bot', 'writer', { voice_tools: { call_recording: { enabled: true } } });
      await call('PATCH', '/api/agents/audited-bot', 'admin', {
        voice_tools: { call_recording: { storage_days: 30 } },
      });
      const res = await call('GET', '/api/agents/audited-bot/audit', 'writer');
      expect(res.status).toBe(200);
      const t1Keys = await store.keys.list('t1');
      const keyId = (name: string) => t1Keys.find((key) => key.name === name)!.id;
      expect(await json(res)).toEqual({
        data: [
          {
            at: expect.any(String),
            key_id: keyId('admin'),
            before: { voice_tools: { call_recording: { enabled: true } } },
            after: { voice_tools: { call_recording: { enabled: true, storage_days: 30 } } },
          },
          {
            at: expect.any(String),
            key_id: keyId('writer'),
            before: {},
            after: { voice_tools: { call_recording: { enabled: true } } },
          },
        ],
      });
      await expectError(await call('GET', '/api/agents/nobody/audit', 'writer'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/agents/audited-bot/audit', 'other'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/agents/audited-bot/audit', 'reader'), 403, 'ERR_FORBIDDEN');
    });

    test.each([
      [
        'an unknown field',
        { voice_tools: { call_recording: { enabeld: true } } },
        'voice_tools.call_recording.enabeld',
        /unknown field/,
      ],
      ['an unknown top-level field', { voice_tools: {}, extra: 1 }, 'extra', /unknown field/],
      [
        'a wrong type',
        { voice_tools: { call_recording: { enabled: 'yes' } } },
        'voice_tools.call_recording.enabled',
        /boolean/,
      ],
      [
        'storage_days above range',
        { voice_tools: { call_recording: { storage_days: 3651 } } },
        'voice_tools.call_recording.storage_days',
        /3650/,
      ],
      [
        'storage_days below range',
        { voice_tools: { call_recording: { storage_days: 0 } } },
        'voice_tools.call_recording.storage_days',
        /1/,
      ],
      [
        'a fractional storage_days',
        { voice_tools: { call_recording: { storage_days: 1.5 } } },
        'voice_tools.call_recording.storage_days',
        /whole number from 1 to 3650/,
      ],
      [
        'a too-long consent_message',
        { voice_tools: { call_recording: { consent_message: 'x'.repeat(501) } } },
        'voice_tools.call_recording.consent_message',
        /500/,
      ],
      [
        'an empty consent_message',
        { voice_tools: { call_recording: { consent_message: '' } } },
        'voice_tools.call_recording.consent_message',
        /1/,
      ],
      [
        'an unknown format',
        { voice_tools: { call_recording: { format: 'flac' } } },
        'voice_tools.call_recording.format',
        /one of "mp3", "wav", "ogg"/,
      ],
      [
        'a bad consent_digit',
        { voice_tools: { call_recording: { consent_digit: '12' } } },
        'voice_tools.call_recording.consent_digit',
        /one key: 0–9, \* or #/,
      ],
      [
        'an http agent_ws_url',
        { voice_tools: { call_recording: { agent_ws_url: 'http://agent.example' } } },
        'voice_tools.call_recording.agent_ws_url',
        /must be a ws:\/\/ or wss:\/\/ URL, or null/,
      ],
      [
        'consent_timeout_seconds above range',
        { voice_tools: { call_recording: { consent_timeout_seconds: 121 } } },
        'voice_tools.call_recording.consent_timeout_seconds',
        /120/,
      ],
    ])('PATCH with %s is 400 naming the field', async (_, body, field, message) => {
      const error = await expectError(
        await call('PATCH', '/agents/strict-bot', 'writer', body),
        400,
        'ERR_VALIDATION',
        field,
      );
      expect(error.message).toMatch(message);
      expect(await store.agents.get('t1', 'strict-bot')).toBeNull();
    });

    test('an agent id outside the allowed pattern is 400', async () => {
      await expectError(await call('PATCH', '/agents/bad%20id', 'writer', {}), 400, 'ERR_VALIDATION', 'agentId');
    });

    test('a body that is not JSON is 400 in the error format', async () => {
      const res = await fetch(`${base}/agents/x`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${keys.writer}`, 'content-type': 'application/json' },
        body: '{nope',
      });
      await expectError(res, 400, 'ERR_BAD_REQUEST');
    });

    test('a body over the limit is a 413 that reaches a client still sending it', async () => {
      // Like fetch, this client sends the whole body before it reads: a connection cut at the
      // refusal resets it, and the 413 waiting unread is lost (37 of 200 fetches of 2 MiB).
      const { port } = new URL(base);
      const socket = net.connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      socket.pause();
      const size = 2 * 1024 * 1024;
      socket.write(
        `PATCH /agents/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${keys.writer}\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`,
      );
      socket.write(Buffer.alloc(size / 4, 0x20));
      await sleep(300); // the refusal is sent meanwhile
      await new Promise<void>((resolve) => socket.write(Buffer.alloc((size * 3) / 4, 0x20), () => resolve()));
      const answer: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => answer.push(chunk)).on('error', () => {});
      socket.resume();
      await Promise.race([once(socket, 'data'), once(socket, 'close')]);
      socket.destroy();
      expect(Buffer.concat(answer).toString('latin1')).toMatch(/^HTTP\/1\.1 413 /);
    });
  });

  describe('calls', () => {
    const settings = { ...CALL_RECORDING_DEFAULTS, enabled: true };
    beforeAll(async () => {
      for (let i = 0; i < 5; i++) {
        await store.calls.create({
          tenantId: 't1',
          id: `list-${i}`,
          agentId: i % 2 ? 'odd' : 'even',
          provider: 'twilio',
          mode: 'fork',
          sampleRate: 8000,
          legs: ['caller', 'agent'],
          settings,
          startedAt: `2023-01-0${i + 1}T00:00:00.000Z`,
        });
      }
      const recording = await store.recordings.create({
        tenantId: 't1',
        callId: 'list-3',
        format: 'mp3',
        channels: 1,
        sampleRate: 8000,
        storageDays: 90,
      });
      await store.recordings.update(recording.id, {
        status: 'ready',
        byteSize: 10,
        durationMs: 1000,
        sha256: 'f'.repeat(64),
      });
      await store.calls.update('t1', 'list-3', {
        status: 'ended',
        consent: { outcome: 'announced' },
        pauses: [{ start_ms: 5, end_ms: 10 }],
      });
    });

    const ids = async (query: string) => {
      const res = await call('GET', `/api/calls?to=2023-01-06T00:00:00Z&${query}`, 'reader');
      expect(res.status).toBe(200);
      return (await json(res)) as { data: { id: string }[]; next_cursor: string | null };
    };

    test('pages newest first with an opaque cursor', async () => {
      const first = await ids('limit=2');
      expect(first.data.map((c) => c.id)).toEqual(['list-4', 'list-3']);
      const second = await ids(`limit=2&cursor=${first.next_cursor}`);
      expect(second.data.map((c) => c.id)).toEqual(['list-2', 'list-1']);
      const last = await ids(`limit=2&cursor=${second.next_cursor}`);
      expect(last.data.map((c) => c.id)).toEqual(['list-0']);
      expect(last.next_cursor).toBeNull();
    });

    test('filters by agent, time and recording', async () => {
      expect((await ids('agent_id=odd')).data.map((c) => c.id)).toEqual(['list-3', 'list-1']);
      expect((await ids('from=2023-01-04T00:00:00.000Z')).data.map((c) => c.id)).toEqual(['list-4', 'list-3']);
      expect((await ids('status=ready')).data.map((c) => c.id)).toEqual(['list-3']);
      expect((await ids('has_recording=true')).data.map((c) => c.id)).toEqual(['list-3']);
      expect((await ids('status=none')).data.map((c) => c.id)).toEqual(['list-4', 'list-2', 'list-1', 'list-0']);
      expect((await ids('has_recording=false&agent_id=odd')).data.map((c) => c.id)).toEqual(['list-1']);
    });

    test('bad query parameters are 400 naming them', async () => {
      await expectError(await call('GET', '/api/calls?limit=0', 'reader'), 400, 'ERR_VALIDATION', 'limit');
      await expectError(await call('GET', '/api/calls?limit=201', 'reader'), 400, 'ERR_VALIDATION', 'limit');
      await expectError(await call('GET', '/api/calls?status=lost', 'reader'), 400, 'ERR_VALIDATION', 'status');
      await expectError(await call('GET', '/api/calls?from=yesterday', 'reader'), 400, 'ERR_VALIDATION', 'from');
      await expectError(await call('GET', '/api/calls?cursor=garbage', 'reader'), 400, 'ERR_VALIDATION', 'cursor');
    });

    test('GET a call shows its metadata and recording', async () => {
      const res = await call('GET', '/api/calls/list-3', 'reader');
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({
        id: 'list-3',
        agent_id: 'odd',
        provider: 'twilio',
        mode: 'fork',
        status: 'ended',
        started_at: '2023-01-04T00:00:00.000Z',
        ended_at: null,
        end_reason: null,
        legs: ['caller', 'agent'],
        sample_rate: 8000,
        recording: {
          id: expect.any(String),
          status: 'ready',
          format: 'mp3',
          channels: 1,
          duration_ms: 1000,
          byte_size: 10,
          sha256: 'f'.repeat(64),
          error: null,
          created_at: expect.any(String),
          ready_at: null,
          retention_expires_at: expect.any(String),
          complete: true,
          lost_spans: [],
        },
        recording_status: 'ready',
        consent: { outcome: 'announced' },
        pauses: [{ start_ms: 5, end_ms: 10 }],
        alignment: null,
        participants: [],
        legal_hold: false,
        legal_hold_reason: null,
      });
      const none = await json(await call('GET', '/api/calls/list-0', 'reader'));
      expect(none).toMatchObject({ recording: null, recording_status: 'none' });
    });

    test("unknown calls and another tenant's calls are 404", async () => {
      await expectError(await call('GET', '/api/calls/nope', 'reader'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/calls/list-3', 'other'), 404, 'ERR_NOT_FOUND');
      expect((await json(await call('GET', '/api/calls', 'other'))).data).toEqual([]);
    });
  });

  describe('recording download', () => {
    const audio = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    let recordingId: string;

    async function addCall(
      id: string,
      status?: 'recording' | 'processing' | 'failed' | 'ready' | 'deleted',
      object?: { objectKey: string; keyId?: string; wrappedKey?: string },
    ) {
      await store.calls.create({
        tenantId: 't1',
        id,
        agentId: 'dl',
        provider: 'twilio',
        mode: 'fork',
        sampleRate: 8000,
        legs: ['caller', 'agent'],
        settings: CALL_RECORDING_DEFAULTS,
      });
      if (!status) return undefined;
      const recording = await store.recordings.create({
        tenantId: 't1',
        callId: id,
        format: 'mp3',
        channels: 1,
        sampleRate: 8000,
        storageDays: 90,
      });
      await store.recordings.update(recording.id, { status, ...object });
      return recording.id;
    }

    beforeAll(async () => {
      recordingId = (await addCall(
        'dl-ready',
        'ready',
        await putEncrypted(storage, services.keyring, 't1/dl/rec.mp3.enc', audio),
      ))!;
      await addCall('dl-none');
      await addCall('dl-processing', 'processing');
      await addCall('dl-deleted', 'deleted');
      await addCall('dl-lost', 'ready', { objectKey: 't1/dl/missing.mp3.enc' });
    });

    const get = (query: string, headers: Record<string, string> = {}, key = 'reader') =>
      call('GET', `/api/calls/dl-ready/recording${query}`, key, undefined, headers);

    test('the whole file, with type, length and Accept-Ranges', async () => {
      const res = await get('');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('audio/mpeg');
      expect(res.headers.get('accept-ranges')).toBe('bytes');
      expect(res.headers.get('content-length')).toBe('1000');
      expect(res.headers.get('content-disposition')).toBeNull();
      expect(Buffer.from(await res.arrayBuffer())).toEqual(audio);
    });

    test.each([
      ['bytes=100-199', 100, 199],
      ['bytes=900-', 900, 999],
      ['bytes=-50', 950, 999],
      ['bytes=990-5000', 990, 999],
    ])('Range %s is 206 with Content-Range', async (range, start, end) => {
      const res = await get('', { range });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await res.arrayBuffer())).toEqual(audio.subarray(start, end + 1));
    });

    test('an unsatisfiable range is 416 with the size', async () => {
      const res = await get('', { range: 'bytes=1000-' });
      expect(res.headers.get('content-range')).toBe('bytes */1000');
      await expectError(res, 416, 'ERR_RANGE_NOT_SATISFIABLE');
    });

    test('download=1 names the file; the stored format may be asked for, an unknown one is a 400', async () => {
      const res = await get('?download=1&format=mp3');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="dl-ready.mp3"');
      await res.arrayBuffer();
      await expectError(await get('?format=flac'), 400, 'ERR_VALIDATION');
    });

    test('404 without a recording or after deletion, 409 with the status while not ready', async () => {
      await expectError(await call('GET', '/api/calls/dl-none/recording', 'reader'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/calls/dl-deleted/recording', 'reader'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/calls/unknown/recording', 'reader'), 404, 'ERR_NOT_FOUND');
      await expectError(await call('GET', '/api/calls/dl-ready/recording', 'other'), 404, 'ERR_NOT_FOUND');
      const error = await expectError(
        await call('GET', '/api/calls/dl-processing/recording', 'reader'),
        409,
        'ERR_NOT_READY',
      );
      expect(error.status).toBe('processing');
      await expectError(await call('GET', '/api/calls/dl-ready/recording', 'writer'), 403, 'ERR_FORBIDDEN');
    });

    test('an unexpected failure is a 500 that leaks nothing', async () => {
      const error = await expectError(await call('GET', '/api/calls/dl-lost/recording', 'reader'), 500, 'ERR_INTERNAL');
      expect(error.message).toBe('internal server error');
    });

    test('every served read is in the access log, with key, range and format', async () => {
      const before = (await store.accessLog.list('t1', 'dl-ready')).length;
      await (await get('', { range: 'bytes=0-9' }, 'admin')).arrayBuffer();
      const log = await store.accessLog.list('t1', 'dl-ready');
      expect(log).toHaveLength(before + 1);
      const adminKey = (await store.keys.list('t1')).find((key) => key.name === 'admin')!;
      expect(log.at(-1)).toMatchObject({
        keyId: adminKey.id,
        recordingId,
        format: 'mp3',
        range: 'bytes=0-9',
        ip: '127.0.0.1',
      });
    });
  });
});
