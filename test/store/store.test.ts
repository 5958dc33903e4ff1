import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { S3ObjectStore } from '../../src/storage/s3.js';
import { createTestStore, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { createStore, type NewCall, type Store } from '../../src/store/index.js';
import { migrationProvider } from '../../src/store/migrations.js';

describe.each(TEST_DB_KINDS)('store on %s', (kind) => {
  let t: TestStore;
  let store: Store;

  beforeEach(async () => {
    t = await createTestStore(kind);
    store = t.store;
    await store.tenants.ensure('t1', 'Tenant one');
    await store.tenants.ensure('t2', 'Tenant two');
  });
  afterEach(() => t.cleanup());

  function newCall(id: string, startedAt: string, extra: Partial<NewCall> = {}): NewCall {
    return {
      tenantId: 't1',
      id,
      agentId: 'agent-a',
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: { ...CALL_RECORDING_DEFAULTS, enabled: true },
      startedAt,
      ...extra,
    };
  }

  test('migrate is idempotent and ping answers', async () => {
    await store.migrate();
    await expect(store.ping()).resolves.toBeUndefined();
  });

  test('tenants.ensure keeps the first name', async () => {
    await store.tenants.ensure('t1', 'renamed');
    expect(await store.tenants.get('t1')).toMatchObject({ id: 't1', name: 'Tenant one', settings: {} });
    expect(await store.tenants.get('nope')).toBeNull();
  });

  describe('keys', () => {
    test('a created key verifies to its principal until revoked', async () => {
      const { key, secret } = await store.keys.create({ tenantId: 't1', name: 'ci', scopes: ['recordings:read'] });
      expect(secret).toMatch(/^crk_[A-Za-z0-9_-]{43}$/);
      expect(key).toMatchObject({
        tenantId: 't1',
        name: 'ci',
        scopes: ['recordings:read'],
        operator: false,
        revokedAt: null,
      });
      expect(secret.startsWith(key.prefix)).toBe(true);
      expect(JSON.stringify(await store.keys.list('t1'))).not.toContain(secret);

      expect(await store.keys.verify(secret)).toEqual({
        keyId: key.id,
        tenantId: 't1',
        scopes: ['recordings:read'],
        operator: false,
      });
      expect(await store.keys.verify(`${secret}x`)).toBeNull();

      expect(await store.keys.revoke('t2', key.id)).toBe(false);
      expect(await store.keys.verify(secret)).not.toBeNull();
      expect(await store.keys.revoke('t1', key.id)).toBe(true);
      expect(await store.keys.revoke('t1', key.id)).toBe(false);
      expect(await store.keys.verify(secret)).toBeNull();
      const [listed] = await store.keys.list('t1');
      expect(listed.revokedAt).not.toBeNull();
    });

    test('verify records last use, but not again within a minute', async () => {
      const { key, secret } = await store.keys.create({ tenantId: 't1', name: 'ci', scopes: ['admin'] });
      await store.keys.verify(secret);
      await store.keys.settle();
      const first = (await store.keys.get('t1', key.id))!.lastUsedAt;
      expect(first).not.toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.keys.verify(secret);
      await store.keys.settle();
      expect((await store.keys.get('t1', key.id))!.lastUsedAt).toBe(first);
    });

    test('create rejects an unknown tenant', async () => {
      await expect(store.keys.create({ tenantId: 'ghost', name: 'x', scopes: [] })).rejects.toMatchObject({
        code: 'ERR_NOT_FOUND',
      });
    });

    test('ensureOperatorKey is idempotent and restores a revoked operator key', async () => {
      const secret = 'operator-secret-0123456789';
      const first = await store.keys.ensureOperatorKey(secret);
      expect(first).toMatchObject({ tenantId: 'default', scopes: ['admin'], operator: true });
      expect(await store.tenants.get('default')).not.toBeNull();
      await store.keys.revoke('default', first.id);
      const second = await store.keys.ensureOperatorKey(secret);
      expect(second.id).toBe(first.id);
      expect(await store.keys.list('default')).toHaveLength(1);
      expect(await store.keys.verify(secret)).toEqual({
        keyId: first.id,
        tenantId: 'default',
        scopes: ['admin'],
        operator: true,
      });
    });
  });

  describe('agents', () => {
    test('patch creates, deep-merges and audits every change', async () => {
      expect(await store.agents.get('t1', 'a1')).toBeNull();
      const created = await store.agents.patch(
        't1',
        'a1',
        { voice_tools: { call_recording: { enabled: true, storage_days: 30 } } },
        'k1',
      );
      expect(created.settings).toEqual({ voice_tools: { call_recording: { enabled: true, storage_days: 30 } } });
      const merged = await store.agents.patch(
        't1',
        'a1',
        { voice_tools: { call_recording: { storage_days: 7, agent_ws_url: null } } },
        'k2',
      );
      expect(merged.settings).toEqual({
        voice_tools: { call_recording: { enabled: true, storage_days: 7, agent_ws_url: null } },
      });
      expect(merged.createdAt).toBe(created.createdAt);
      expect(await store.agents.get('t1', 'a1')).toEqual(merged);
      expect(await store.agents.get('t2', 'a1')).toBeNull();

      const audit = await store.agents.audit('t1', 'a1');
      expect(audit.map((entry) => [entry.version, entry.keyId, entry.before, entry.after])).toEqual([
        [1, 'k1', {}, created.settings],
        [2, 'k2', created.settings, merged.settings],
      ]);
      expect((await store.agents.list('t1')).map((agent) => agent.id)).toEqual(['a1']);
    });

    test('concurrent patches of one agent keep every field', async () => {
      const fields = ['enabled', 'auto_record', 'dual_channel', 'consent_prompt'] as const;
      await Promise.all(
        fields.map((field) =>
          store.agents.patch('t1', 'busy', { voice_tools: { call_recording: { [field]: true } } }, null),
        ),
      );
      expect((await store.agents.get('t1', 'busy'))!.settings.voice_tools!.call_recording).toEqual(
        Object.fromEntries(fields.map((field) => [field, true])),
      );
      expect((await store.agents.audit('t1', 'busy')).map((entry) => entry.version)).toEqual([1, 2, 3, 4]);
    });
  });

  describe('calls and recordings', () => {
    test('a call is created live, updated, and scoped to its tenant', async () => {
      const call = await store.calls.create(newCall('CA1', '2024-05-01T10:00:00.000Z'));
      expect(call).toMatchObject({
        status: 'live',
        pauses: [],
        consent: null,
        alignment: null,
        legs: ['caller', 'agent'],
      });
      expect(await store.calls.get('t1', 'CA1')).toEqual(call);
      expect(await store.calls.get('t2', 'CA1')).toBeNull();
      await expect(store.calls.create(newCall('CA1', '2024-05-01T10:00:00.000Z'))).rejects.toMatchObject({
        code: 'ERR_CONFLICT',
      });

      const ended = await store.calls.update('t1', 'CA1', {
        status: 'ended',
        endedAt: '2024-05-01T10:05:00.000Z',
        endReason: 'hangup',
        consent: { outcome: 'announced' },
        pauses: [{ start_ms: 1000, end_ms: 2000 }],
        alignment: { max_skew_ms: 0.5 },
      });
      expect(ended).toMatchObject({
        status: 'ended',
        endReason: 'hangup',
        consent: { outcome: 'announced' },
        pauses: [{ start_ms: 1000, end_ms: 2000 }],
        alignment: { max_skew_ms: 0.5 },
      });
      expect(ended!.settings).toEqual({ ...CALL_RECORDING_DEFAULTS, enabled: true });
      expect(await store.calls.update('t2', 'CA1', { status: 'ended' })).toBeNull();
    });

    test('one recording per call; updates round-trip large sizes as numbers', async () => {
      await store.calls.create(newCall('CA1', '2024-05-01T10:00:00.000Z'));
      const recording = await store.recordings.create({
        tenantId: 't1',
        callId: 'CA1',
        format: 'mp3',
        channels: 2,
        sampleRate: 8000,
        storageDays: 90,
      });
      expect(recording).toMatchObject({ status: 'recording', attempts: 0, objectKey: null });
      await expect(
        store.recordings.create({
          tenantId: 't1',
          callId: 'CA1',
          format: 'mp3',
          channels: 1,
          sampleRate: 8000,
          storageDays: 90,
        }),
      ).rejects.toMatchObject({ code: 'ERR_CONFLICT' });

      const ready = await store.recordings.update(recording.id, {
        status: 'ready',
        byteSize: 5_000_000_000,
        durationMs: 61_000,
        sha256: 'ab'.repeat(32),
        attempts: 1,
        readyAt: '2024-05-01T10:06:00.000Z',
      });
      expect(ready).toMatchObject({ status: 'ready', byteSize: 5_000_000_000, durationMs: 61_000, attempts: 1 });
      expect(typeof ready!.byteSize).toBe('number');
      expect(await store.recordings.getByCall('t1', 'CA1')).toEqual(ready);
      expect(await store.recordings.getByCall('t2', 'CA1')).toBeNull();
      expect(await store.recordings.get(recording.id)).toEqual(ready);
      expect(await store.recordings.update('missing', { status: 'failed' })).toBeNull();
    });

    test('list pages newest first, ties broken by id, without gaps or repeats', async () => {
      for (let i = 0; i < 7; i++) {
        // Pairs share a start time so the cursor must break ties by id.
        const id = `CA${i}`;
        await store.calls.create(newCall(id, `2024-05-01T10:0${Math.floor(i / 2)}:00.000Z`));
      }
      await store.calls.create({ ...newCall('other-tenant', '2024-05-01T11:00:00.000Z'), tenantId: 't2' });
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.calls.list('t1', {}, cursor, 3);
        seen.push(...page.items.map((item) => item.call.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(['CA6', 'CA5', 'CA4', 'CA3', 'CA2', 'CA1', 'CA0']);
      await expect(store.calls.list('t1', {}, 'not-a-cursor', 3)).rejects.toMatchObject({ code: 'ERR_INVALID_CURSOR' });
    });

    test('list filters by agent, time, recording status and presence', async () => {
      await store.calls.create(newCall('c-none', '2024-05-01T10:00:00.000Z'));
      await store.calls.create(newCall('c-ready', '2024-05-02T10:00:00.000Z', { agentId: 'agent-b' }));
      await store.calls.create(newCall('c-deleted', '2024-05-03T10:00:00.000Z'));
      const ready = await store.recordings.create({
        tenantId: 't1',
        callId: 'c-ready',
        format: 'wav',
        channels: 1,
        sampleRate: 8000,
        storageDays: 90,
      });
      await store.recordings.update(ready.id, { status: 'ready' });
      const deleted = await store.recordings.create({
        tenantId: 't1',
        callId: 'c-deleted',
        format: 'wav',
        channels: 1,
        sampleRate: 8000,
        storageDays: 90,
      });
      await store.recordings.update(deleted.id, { status: 'deleted' });

      const ids = async (filters: Parameters<Store['calls']['list']>[1]) =>
        (await store.calls.list('t1', filters, undefined, 50)).items.map((item) => item.call.id);
      expect(await ids({})).toEqual(['c-deleted', 'c-ready', 'c-none']);
      expect(await ids({ agentId: 'agent-b' })).toEqual(['c-ready']);
      expect(await ids({ from: '2024-05-02T00:00:00.000Z' })).toEqual(['c-deleted', 'c-ready']);
      expect(await ids({ to: '2024-05-02T10:00:00.000Z' })).toEqual(['c-none']);
      expect(await ids({ status: 'none' })).toEqual(['c-none']);
      expect(await ids({ status: 'ready' })).toEqual(['c-ready']);
      expect(await ids({ hasRecording: true })).toEqual(['c-ready']);
      expect(await ids({ hasRecording: false })).toEqual(['c-deleted', 'c-none']);

      const page = await store.calls.list('t1', { status: 'ready' }, undefined, 50);
      expect(page.items[0].recording).toMatchObject({ id: ready.id, status: 'ready', format: 'wav' });
    });

    test('the access log keeps who read what', async () => {
      await store.accessLog.add({
        tenantId: 't1',
        keyId: 'k1',
        callId: 'CA1',
        recordingId: 'r1',
        format: 'mp3',
        range: 'bytes=0-99',
        ip: '127.0.0.1',
      });
      expect(await store.accessLog.list('t1', 'CA1')).toEqual([
        expect.objectContaining({
          keyId: 'k1',
          recordingId: 'r1',
          format: 'mp3',
          range: 'bytes=0-99',
          ip: '127.0.0.1',
        }),
      ]);
      expect(await store.accessLog.list('t2', 'CA1')).toEqual([]);
    });
  });

  describe('legal hold, deletion and retention', () => {
    const DAY_MS = 86_400_000;
    let dir: string;
    let objects: LocalObjectStore;

    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-store-objects-'));
      objects = new LocalObjectStore(dir);
    });
    afterEach(() => fs.rm(dir, { recursive: true, force: true }));

    /** A call with a ready recording whose object is really in `objects`. */
    async function readyRecording(
      callId: string,
      storageDays = 90,
      tenantId = 't1',
      objectKey = `${tenantId}/${callId}.mp3.enc`,
    ) {
      await store.calls.create({ ...newCall(callId, '2024-05-01T10:00:00.000Z'), tenantId });
      const recording = await store.recordings.create({
        tenantId,
        callId,
        format: 'mp3',
        channels: 1,
        sampleRate: 8000,
        storageDays,
      });
      if (!objectKey.startsWith('..')) await objects.put(objectKey, Readable.from([Buffer.from('audio')]));
      return (await store.recordings.update(recording.id, { status: 'ready', objectKey }))!;
    }

    test('a new call is not on hold; hold and release are audited with who, what and why', async () => {
      expect(await store.calls.create(newCall('H1', '2024-05-01T10:00:00.000Z'))).toMatchObject({
        legalHold: false,
        legalHoldReason: null,
      });
      const held = await store.calls.setLegalHold('t1', 'H1', true, 'case 42', 'k1');
      expect(held).toMatchObject({ id: 'H1', legalHold: true, legalHoldReason: 'case 42' });
      expect(await store.calls.get('t1', 'H1')).toEqual(held);
      const released = await store.calls.setLegalHold('t1', 'H1', false, 'case closed', 'k2');
      expect(released).toMatchObject({ legalHold: false, legalHoldReason: null });
      expect(await store.calls.setLegalHold('t2', 'H1', true, 'not mine', 'k3')).toBeNull();

      const audit = await store.calls.audit('t1', 'H1');
      expect(
        audit.map(({ version, keyId, action, before, after }) => ({ version, keyId, action, before, after })),
      ).toEqual([
        {
          version: 1,
          keyId: 'k1',
          action: 'legal_hold',
          before: { legal_hold: false, reason: null },
          after: { legal_hold: true, reason: 'case 42' },
        },
        {
          version: 2,
          keyId: 'k2',
          action: 'legal_hold',
          before: { legal_hold: true, reason: 'case 42' },
          after: { legal_hold: false, reason: 'case closed' },
        },
      ]);
      expect(await store.calls.audit('t2', 'H1')).toEqual([]);
    });

    test('delete removes the object, marks the recording deleted and leaves a tombstone', async () => {
      const recording = await readyRecording('D1');
      expect(await objects.exists('t1/D1.mp3.enc')).toBe(true);
      const { recording: after, tombstone } = await store.recordings.delete('t1', 'D1', objects, {
        deletedBy: 'k1',
        reason: 'api',
      });
      expect(await objects.exists('t1/D1.mp3.enc')).toBe(false);
      expect(after).toMatchObject({ id: recording.id, status: 'deleted', deletedAt: expect.any(String) });
      expect(await store.recordings.getByCall('t1', 'D1')).toEqual(after);
      expect(tombstone).toMatchObject({
        tenantId: 't1',
        callId: 'D1',
        recordingId: recording.id,
        objectKey: 't1/D1.mp3.enc',
        deletedBy: 'k1',
        reason: 'api',
      });
      expect(await store.tombstones.list('t1', 'D1')).toEqual([tombstone]);
      expect(await store.tombstones.list('t2', 'D1')).toEqual([]);
      await expect(
        store.recordings.delete('t1', 'D1', objects, { deletedBy: 'k1', reason: 'api' }),
      ).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    });

    test('delete refuses a held call, a recording in progress, and other tenants; the object stays', async () => {
      await readyRecording('D2');
      await store.calls.setLegalHold('t1', 'D2', true, 'litigation', 'k1');
      const by = { deletedBy: 'k1', reason: 'api' } as const;
      await expect(store.recordings.delete('t1', 'D2', objects, by)).rejects.toMatchObject({ code: 'ERR_LEGAL_HOLD' });
      await expect(store.recordings.delete('t2', 'D2', objects, by)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });

      for (const status of ['recording', 'paused', 'processing'] as const) {
        await store.calls.create(newCall(`P-${status}`, '2024-05-01T10:00:00.000Z'));
        const recording = await store.recordings.create({
          tenantId: 't1',
          callId: `P-${status}`,
          format: 'mp3',
          channels: 1,
          sampleRate: 8000,
          storageDays: 90,
        });
        await store.recordings.update(recording.id, { status });
        await expect(store.recordings.delete('t1', `P-${status}`, objects, by)).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
        });
      }
      await store.calls.create(newCall('no-recording', '2024-05-01T10:00:00.000Z'));
      await expect(store.recordings.delete('t1', 'no-recording', objects, by)).rejects.toMatchObject({
        code: 'ERR_NOT_FOUND',
      });
      expect(await objects.exists('t1/D2.mp3.enc')).toBe(true);
      expect(await store.tombstones.list('t1', 'D2')).toEqual([]);

      await store.calls.setLegalHold('t1', 'D2', false, 'released', 'k1');
      await store.recordings.delete('t1', 'D2', objects, by);
      expect(await objects.exists('t1/D2.mp3.enc')).toBe(false);
    });

    test('when the object cannot be deleted the recording stays deleting, too late to hold; deleting again or finishDeletions completes it', async () => {
      // A bucket nobody listens at: its deletes fail for real, outside any transaction.
      const down = new S3ObjectStore('s3://bucket/rec', {
        endpoint: 'http://127.0.0.1:1',
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        timeouts: { connectMs: 500, requestMs: 500 },
      });
      const by = { deletedBy: 'k1', reason: 'api' } as const;
      const failures: string[] = [];
      const onError = (recording: { callId: string }) => failures.push(recording.callId);
      for (const callId of ['D3', 'D4']) {
        await readyRecording(callId);
        await expect(store.recordings.delete('t1', callId, down, by)).rejects.toThrow();
        expect(await store.recordings.getByCall('t1', callId)).toMatchObject({ status: 'deleting', deletedAt: null });
        expect(await store.tombstones.list('t1', callId)).toMatchObject([{ deletedBy: 'k1', reason: 'api' }]);
        await expect(store.calls.setLegalHold('t1', callId, true, 'too late', 'k2')).rejects.toMatchObject({
          code: 'ERR_CONFLICT',
        });
        expect(await objects.exists(`t1/${callId}.mp3.enc`)).toBe(true);
      }
      down.destroy();
      // Deleting again resumes, under the decision already recorded.
      const [decided] = await store.tombstones.list('t1', 'D3');
      expect(await store.recordings.delete('t1', 'D3', objects, { deletedBy: 'k9', reason: 'api' })).toMatchObject({
        recording: { status: 'deleted' },
        tombstone: decided,
      });
      expect(await objects.exists('t1/D3.mp3.enc')).toBe(false);
      // Recovery finishes what is left, once it has sat long enough not to be under way.
      expect(await store.recordings.finishDeletions(async () => objects, { idleMs: 60_000, onError })).toEqual([]);
      expect(await store.recordings.finishDeletions(async () => objects, { idleMs: 0, onError })).toMatchObject([
        { callId: 'D4', status: 'deleted', deletedAt: expect.any(String) },
      ]);
      expect(await store.recordings.getByCall('t1', 'D4')).toMatchObject({ status: 'deleted' });
      expect(await objects.exists('t1/D4.mp3.enc')).toBe(false);
      expect(await store.tombstones.list('t1', 'D4')).toHaveLength(1);
      expect(failures).toEqual([]);
    });

    test('listExpired finds ready recordings past their own storage_days, skipping held calls', async () => {
      await readyRecording('E-short', 30);
      await readyRecording('E-long', 90);
      await readyRecording('E-held', 30);
      await readyRecording('E-t2', 30, 't2');
      await store.calls.setLegalHold('t1', 'E-held', true, 'regulator', null);
      await store.calls.create(newCall('E-processing', '2024-05-01T10:00:00.000Z'));
      const processing = await store.recordings.create({
        tenantId: 't1',
        callId: 'E-processing',
        format: 'mp3',
        channels: 1,
        sampleRate: 8000,
        storageDays: 1,
      });
      await store.recordings.update(processing.id, { status: 'processing' });

      const expiredAt = async (days: number) =>
        (await store.recordings.listExpired(new Date(Date.now() + days * DAY_MS), 10)).map((r) => r.callId).sort();
      expect(await expiredAt(29)).toEqual([]);
      expect(await expiredAt(31)).toEqual(['E-short', 'E-t2']);
      expect(await expiredAt(91)).toEqual(['E-long', 'E-short', 'E-t2']);
      expect(await store.recordings.listExpired(new Date(Date.now() + 91 * DAY_MS), 1)).toHaveLength(1);

      await store.recordings.delete('t1', 'E-short', objects, { deletedBy: 'retention', reason: 'retention' });
      expect(await expiredAt(31)).toEqual(['E-t2']);
    });

    test('tombstones.add records a deletion made elsewhere', async () => {
      const tombstone = await store.tombstones.add({
        tenantId: 't1',
        callId: 'T1',
        recordingId: 'r1',
        objectKey: 'k',
        deletedBy: 'retention',
        reason: 'retention',
      });
      expect(await store.tombstones.list('t1', 'T1')).toEqual([tombstone]);
      expect(tombstone.at).toEqual(expect.any(String));
    });
  });
});

test('PostgreSQL stores in different schemas do not see each other', async () => {
  const a = await createTestStore('postgres');
  const b = await createTestStore('postgres');
  try {
    await a.store.tenants.ensure('only-in-a', 'A');
    expect(await a.store.tenants.get('only-in-a')).not.toBeNull();
    expect(await b.store.tenants.get('only-in-a')).toBeNull();
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('a database at the first migration upgrades in place: existing calls are not on hold', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-upgrade-'));
  const file = path.join(dir, 'callrec.db');
  const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new SqliteDatabase(file) }) });
  try {
    const { error } = await new Migrator({ db: old, provider: migrationProvider }).migrateTo('0001_initial');
    expect(error).toBeUndefined();
    await old
      .insertInto('calls')
      .values({
        tenant_id: 't1',
        id: 'before-upgrade',
        agent_id: 'a',
        provider: 'twilio',
        mode: 'fork',
        status: 'ended',
        started_at: '2024-01-01T00:00:00.000Z',
        sample_rate: 8000,
        legs: '["caller"]',
        settings: '{}',
        pauses: '[]',
      })
      .execute();
  } finally {
    await old.destroy();
  }
  const store = await createStore(`sqlite://${file}`);
  try {
    await store.migrate();
    expect(await store.calls.get('t1', 'before-upgrade')).toMatchObject({ legalHold: false, legalHoldReason: null });
    expect(await store.calls.setLegalHold('t1', 'before-upgrade', true, 'audit', null)).toMatchObject({
      legalHold: true,
    });
  } finally {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
