import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { readFixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { SIGNATURE_HEADER, verifySignature } from '../../src/webhooks/index.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SECRET = 'whsec-for-the-e2e-test';
let ts: TestServer;
let receiver: WebhookReceiver;

beforeAll(async () => {
  ts = await startTestServer();
  receiver = await WebhookReceiver.start();
  const res = await ts.api(`/api/tenants/${ts.tenantId}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ webhook_url: receiver.url, webhook_secret: SECRET }),
  });
  expect(res.status).toBe(200);
  await ts.agent('hooked', { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
});
afterAll(async () => {
  await ts?.close();
  await receiver?.close();
});

test('a finished recording and its deletion reach the tenant as signed webhooks', async () => {
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/telnyx-fork-pcma.jsonl'));
  const callId = uniqueCallId('hooked');
  await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/telnyx`,
    agentId: 'hooked',
    token: ts.key,
    callId,
    speed: 'max',
  });
  const rec = await ts.recording(callId);

  const [completed] = await receiver.waitForDelivered(1);
  expect(verifySignature(String(completed.headers[SIGNATURE_HEADER.toLowerCase()]), completed.body, SECRET, 300)).toBe(
    true,
  );
  expect(
    verifySignature(
      String(completed.headers[SIGNATURE_HEADER.toLowerCase()]),
      completed.body,
      'another secret....',
      300,
    ),
  ).toBe(false);
  const event = JSON.parse(completed.body);
  // A stock Standard Webhooks verifier, given the secret in its form, accepts the same delivery.
  const standardHeaders = Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, String(completed.headers[name])]),
  );
  expect(
    new Webhook(`whsec_${Buffer.from(SECRET).toString('base64')}`).verify(completed.body, standardHeaders),
  ).toEqual(event);
  expect(event).toMatchObject({ id: expect.any(String), type: 'recording.completed', created_at: expect.any(String) });
  expect(event.data).toMatchObject({
    call_id: callId,
    recording_id: rec.id,
    agent_id: 'hooked',
    format: 'wav',
    duration_ms: rec.durationMs,
    byte_size: rec.byteSize,
    sha256: rec.sha256,
    object_key: rec.objectKey,
    complete: true,
    lost_spans: [],
  });

  expect((await ts.api(`/api/calls/${callId}/recording`, { method: 'DELETE' })).status).toBe(200);
  const [, deleted] = await receiver.waitForDelivered(2);
  expect(JSON.parse(deleted.body)).toMatchObject({
    type: 'recording.deleted',
    data: { call_id: callId, recording_id: rec.id },
  });
});
