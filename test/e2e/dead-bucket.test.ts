import path from 'node:path';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { applySettingsPatch } from '../../src/tenants/settings.js';
import { silentListener, type SilentListener } from '../helpers/silent-listener.js';
import { until } from '../helpers/until.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

/*
 * Issue 23: a tenant points its bucket at an endpoint that accepts connections and never
 * answers, then records calls and deletes a recording. The other tenant's API, streams and
 * recordings go on as before (SQLite, the default store, has one connection: a transaction held
 * across the remote call would hold every tenant's queries).
 */

/** "A few seconds": what the other tenant may wait at most (its requests take milliseconds). */
const FEW_SECONDS_MS = 5_000;

let ts: TestServer;
let silent: SilentListener;
let fixture: Fixture;
beforeAll(async () => {
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-connect-caller.jsonl'));
  silent = await silentListener();
  // Long enough that waiting for the silent bucket's timeouts would show.
  ts = await startTestServer({ env: { REMOTE_REQUEST_TIMEOUT_SECONDS: '120' } });
});
afterAll(async () => {
  await silent?.close();
  await ts?.close();
});

test("a tenant's bucket that never answers does not hold another tenant's API, streams or recordings", async () => {
  const { store } = ts.server;
  // Tenant "stalls": its own S3 bucket at the silent endpoint.
  await store.tenants.ensure('stalls', 'Stalls');
  const stallsKey = (await store.keys.create({ tenantId: 'stalls', name: 'admin', scopes: ['admin'] })).secret;
  const keyring = await MasterKeyring.load({ dataDir: ts.dataDir, masterKey: ts.cluster.masterKey });
  const bucket = {
    storage_url: 's3://bucket/rec',
    storage_credentials: {
      access_key_id: 'AKIAEXAMPLE',
      secret_access_key: 'secret-example-key',
      endpoint: `http://127.0.0.1:${silent.port}`,
    },
  };
  await store.tenants.updateSettings('stalls', (current) =>
    applySettingsPatch(keyring, 'stalls', current, bucket, { operator: false }),
  );
  const recorded = { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' } as const;
  await store.agents.patch('stalls', 'rec', { voice_tools: { call_recording: recorded } }, null);
  await ts.agent('rec', recorded);

  // Two of its calls, whose uploads hang (as many as the node's recording jobs at once)…
  for (let i = 0; i < 2; i++)
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'rec',
      token: stallsKey,
      callId: uniqueCallId('stalls'),
      speed: 'max',
    });
  await until('an upload to the silent bucket is under way', () => silent.connections() >= 1);
  // …and the deletion of a recording in that bucket, which hangs too.
  await store.calls.create({
    tenantId: 'stalls',
    id: 'old',
    agentId: 'rec',
    provider: 'twilio',
    mode: 'fork',
    sampleRate: 8000,
    legs: ['caller'],
    settings: CALL_RECORDING_DEFAULTS,
    nodeId: null,
  });
  await store.calls.update('stalls', 'old', { status: 'ended', endedAt: new Date().toISOString() });
  const old = await store.recordings.create({
    tenantId: 'stalls',
    callId: 'old',
    format: 'wav',
    channels: 1,
    sampleRate: 8000,
    storageDays: 90,
  });
  await store.recordings.update(old.id, {
    status: 'ready',
    objectKey: 'stalls/old.wav.enc',
    storageUrl: 's3://bucket/rec',
  });
  const before = silent.connections();
  const deletion = fetch(`${ts.server.url}/api/calls/old/recording`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${stallsKey}` },
  }).then(
    (res) => res.status,
    () => 0,
  );
  await until('the deletion reaches the silent bucket', () => silent.connections() > before);

  // The other tenant: its API answers, its stream records, its recording is stored, all at once.
  const res = await ts.api('/api/calls', { signal: AbortSignal.timeout(FEW_SECONDS_MS) });
  expect(res.status).toBe(200);
  expect((await fetch(`${ts.server.url}/readyz`, { signal: AbortSignal.timeout(FEW_SECONDS_MS) })).status).toBe(200);
  const callId = uniqueCallId('other');
  const replay = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: 'rec',
    token: ts.key,
    callId,
    speed: 'max',
  });
  expect(replay.closeCode).toBe(1000);
  const finished = Date.now();
  expect(await ts.recording(callId, FEW_SECONDS_MS + 5_000)).toMatchObject({
    status: 'ready',
    storageUrl: ts.cluster.storageUrl,
  });
  expect(Date.now() - finished).toBeLessThan(FEW_SECONDS_MS + 5_000);
  // Still hanging, as the bucket still does not answer.
  expect(await store.recordings.getByCall('stalls', 'old')).toMatchObject({ status: 'deleting' });

  // The bucket goes away: what hung fails, and the deletion stays to be finished.
  await silent.close();
  expect(await deletion).toBeGreaterThanOrEqual(500);
}, 60_000);
