import fs from 'node:fs/promises';
import os from 'node:os';
import { loopbackEgress } from '../helpers/api-deps.js';
import path from 'node:path';
import type { Queue, Worker } from 'bullmq';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { applySettingsPatch, type TenantSettingsPatch } from '../../src/tenants/settings.js';
import {
  createWebhookQueue,
  emitRecordingEvent,
  emitWebhook,
  RecordingEventDataSchema,
  signatureHeader,
  verifySignature,
  webhookEventSchema,
  type WebhookContext,
  type WebhookJobData,
} from '../../src/webhooks/index.js';
import { Webhook } from 'standardwebhooks';
import { Compile } from 'typebox/compile';
import { startWebhookWorker } from '../../workers/webhooks.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';

const SECRET = 'whsec-test-0123456789';

describe('webhooks', () => {
  let db: TestStore;
  let dataDir: string;
  let keyring: MasterKeyring;
  let receiver: WebhookReceiver;
  let queue: Queue<WebhookJobData>;
  let worker: Worker<WebhookJobData>;
  let ctx: WebhookContext;
  const prefix = testPrefix();

  async function configure(tenantId: string, patch: TenantSettingsPatch): Promise<void> {
    await db.store.tenants.ensure(tenantId, tenantId);
    await db.store.tenants.updateSettings(tenantId, (current) =>
      applySettingsPatch(keyring, tenantId, current, patch, { operator: true }),
    );
  }

  beforeAll(async () => {
    db = await createTestStore('sqlite');
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-webhooks-'));
    keyring = await MasterKeyring.load({ dataDir });
    receiver = await WebhookReceiver.start();
    queue = createWebhookQueue({ url: REDIS_URL }, prefix, { backoffMs: 20 });
    worker = startWebhookWorker(
      { store: db.store, keyring, log: createLogger('silent'), egress: loopbackEgress() },
      { connection: { url: REDIS_URL }, prefix },
    );
    ctx = { queue, store: db.store, keyring, egress: loopbackEgress() };
    await configure('hooked', { webhook_url: receiver.url, webhook_secret: SECRET });
    await db.store.tenants.ensure('quiet', 'No webhook');
  });

  afterAll(async () => {
    await worker.close();
    await queue.close();
    await receiver.close();
    await db.cleanup();
    await fs.rm(dataDir, { recursive: true, force: true });
    await dropRedisPrefix(prefix);
  });

  test('an event is POSTed as signed JSON the receiver can verify', async () => {
    const delivered = receiver.delivered.length;
    const event = await emitWebhook(ctx, 'hooked', 'recording.completed', { call_id: 'c1' });
    expect(event).toMatchObject({
      id: expect.stringMatching(/^evt_/),
      type: 'recording.completed',
      data: { call_id: 'c1' },
    });
    await receiver.waitForDelivered(delivered + 1);
    const request = receiver.requests.at(-1)!;
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({
      id: event!.id,
      type: 'recording.completed',
      created_at: event!.created_at,
      data: { call_id: 'c1' },
    });

    const header = request.headers['callrec-signature'] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, request.body, SECRET, 300)).toBe(true);
    expect(verifySignature(header, request.body, 'whsec-some-other-secret', 300)).toBe(false);
    expect(verifySignature(header, request.body.replace('c1', 'c2'), SECRET, 300)).toBe(false);
    // Outside the tolerance window it is a replay.
    expect(verifySignature(header, request.body, SECRET, 300, Date.now() + 301_000)).toBe(false);
    expect(verifySignature('v1=abc', request.body, SECRET, 300)).toBe(false);
  });

  /** The headers a stock Standard Webhooks verifier reads. */
  const standardHeaders = (request: { headers: Record<string, unknown> }) =>
    Object.fromEntries(
      ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, String(request.headers[name])]),
    );

  test('the Standard Webhooks headers verify with the stock verifier: the secret as whsec_ plus its base64', async () => {
    const delivered = receiver.delivered.length;
    const event = (await emitWebhook(ctx, 'hooked', 'recording.completed', { call_id: 'c-std' }))!;
    await receiver.waitForDelivered(delivered + 1);
    const request = receiver.delivered.at(-1)!;
    const headers = standardHeaders(request);
    expect(headers['webhook-id']).toBe(event.id);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Number(headers['webhook-timestamp'])).toBe(
      Number(/t=(\d+)/.exec(request.headers['callrec-signature'] as string)![1]),
    );
    const standardSecret = `whsec_${Buffer.from(SECRET).toString('base64')}`;
    expect(new Webhook(standardSecret).verify(request.body, headers)).toEqual(event);
    expect(new Webhook(SECRET, { format: 'raw' }).verify(request.body, headers)).toEqual(event);
    expect(() =>
      new Webhook(`whsec_${Buffer.from('another secret of length').toString('base64')}`).verify(request.body, headers),
    ).toThrow(/signature/i);
    expect(() => new Webhook(standardSecret).verify(request.body.replace('c-std', 'c-bad'), headers)).toThrow(
      /signature/i,
    );
  });

  test('a tenant secret in the whsec_ form is used as Standard Webhooks tools give it; a malformed one is refused', async () => {
    const standardSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    await configure('standard', { webhook_url: receiver.url, webhook_secret: standardSecret });
    const delivered = receiver.delivered.length;
    const event = (await emitWebhook(ctx, 'standard', 'recording.deleted', { call_id: 'c-whsec' }))!;
    await receiver.waitForDelivered(delivered + 1);
    const request = receiver.delivered.at(-1)!;
    expect(new Webhook(standardSecret).verify(request.body, standardHeaders(request))).toEqual(event);
    // Callrec-Signature keeps its own rule: the secret string itself is the key.
    expect(verifySignature(request.headers['callrec-signature'] as string, request.body, standardSecret, 300)).toBe(
      true,
    );
    await expect(configure('standard', { webhook_secret: 'whsec_not base64 at all' })).rejects.toMatchObject({
      code: 'ERR_VALIDATION',
      field: 'webhook_secret',
    });
    await expect(
      configure('standard', { webhook_secret: `whsec_${Buffer.alloc(8).toString('base64')}` }),
    ).rejects.toMatchObject({ field: 'webhook_secret' });
  });

  test('verifySignature accepts exactly what signatureHeader produces, at the edge of the window', () => {
    const header = signatureHeader('{"a":1}', SECRET, 1_700_000_000);
    expect(verifySignature(header, '{"a":1}', SECRET, 10, 1_700_000_010_000)).toBe(true);
    expect(verifySignature(header, '{"a":1}', SECRET, 10, 1_700_000_011_000)).toBe(false);
  });

  test('a receiver that fails twice gets the event retried and delivered once', async () => {
    receiver.failNext(2);
    const before = receiver.requests.length;
    const delivered = receiver.delivered.length;
    // The receiver sees the delivery before the worker has recorded it: wait for the worker too
    // (earlier tests' jobs may complete meanwhile).
    const completedIds: string[] = [];
    let wake = () => {};
    const onCompleted = (done: { id?: string }) => {
      completedIds.push(done.id!);
      wake();
    };
    worker.on('completed', onCompleted);
    const event = (await emitWebhook(ctx, 'hooked', 'recording.failed', { call_id: 'c2' }))!;
    await receiver.waitForDelivered(delivered + 1);
    while (!completedIds.includes(event.id)) await new Promise<void>((resolve) => (wake = resolve));
    worker.off('completed', onCompleted);
    const attempts = receiver.requests.slice(before).filter((r) => JSON.parse(r.body).id === event.id);
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 204]);
    const job = (await queue.getJob(event.id))!;
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBe(3);
    // Adding the same event again (a retried emitter) does not deliver it twice.
    await queue.add('recording.failed', job.data, { jobId: event.id });
    expect(await queue.getJobCounts('waiting', 'delayed', 'active')).toEqual({ waiting: 0, delayed: 0, active: 0 });
    expect(receiver.delivered.filter((r) => JSON.parse(r.body).id === event.id)).toHaveLength(1);
  });

  test('no webhook_url, no job', async () => {
    const before = await queue.getJobCounts('completed', 'waiting', 'delayed', 'active', 'failed');
    expect(await emitWebhook(ctx, 'quiet', 'recording.completed', { call_id: 'c3' })).toBeNull();
    expect(await emitWebhook(ctx, 'no-such-tenant', 'recording.completed', { call_id: 'c3' })).toBeNull();
    expect(await queue.getJobCounts('completed', 'waiting', 'delayed', 'active', 'failed')).toEqual(before);
  });

  test("recording events carry the recording and its call's agent", async () => {
    await db.store.calls.create({
      tenantId: 'hooked',
      id: 'call-9',
      agentId: 'agent-7',
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: CALL_RECORDING_DEFAULTS,
    });
    const created = await db.store.recordings.create({
      tenantId: 'hooked',
      callId: 'call-9',
      format: 'mp3',
      channels: 1,
      sampleRate: 8000,
      storageDays: 30,
    });
    const failed = (await db.store.recordings.update(created.id, { status: 'failed', error: 'encoder exploded' }))!;
    const delivered = receiver.delivered.length;
    const event = (await emitRecordingEvent(ctx, 'recording.failed', failed))!;
    await receiver.waitForDelivered(delivered + 1);
    const body: unknown = JSON.parse(receiver.delivered.at(-1)!.body);
    expect(body).toMatchObject({ id: event.id, type: 'recording.failed' });
    // What the OpenAPI document's `webhooks` promise is what is sent.
    const schema = Compile(webhookEventSchema('recording.failed', RecordingEventDataSchema));
    expect(schema.Errors(body)).toEqual([]);
    expect(event.data).toEqual({
      call_id: 'call-9',
      recording_id: created.id,
      agent_id: 'agent-7',
      status: 'failed',
      format: 'mp3',
      duration_ms: null,
      byte_size: null,
      sha256: null,
      storage_url: null,
      object_key: null,
      error: 'encoder exploded',
      complete: true,
      lost_spans: [],
    });
  });
});
