import path from 'node:path';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { applySettingsPatch } from '../../src/tenants/settings.js';
import { createWebhookQueue } from '../../src/webhooks/index.js';
import { REDIS_URL } from '../helpers/redis.js';
import { silentListener, type SilentListener } from '../helpers/silent-listener.js';
import { until } from '../helpers/until.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

/*
 * Issue 23: a tenant (or a media key) points the node's outbound connections at an internal
 * address. The target is a listener on 127.0.0.1 that counts every TCP connection it is offered;
 * the node runs with EGRESS_ALLOW empty, as in production, and must never connect to it.
 */

let fixture: Fixture;
let listener: SilentListener;
beforeAll(async () => {
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-connect-caller.jsonl'));
  listener = await silentListener();
});
afterAll(() => listener?.close());

const patch = (ts: TestServer, pathname: string, body: unknown) =>
  ts.api(pathname, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Each setting naming the listener, as PATCH bodies, with the field a refusal must name. */
function internalSettings(port: number): Array<[string, unknown, string]> {
  const credentials = { access_key_id: 'AKIAEXAMPLE', secret_access_key: 'secret-example-key' };
  return [
    [
      '/api/agents/inside',
      { voice_tools: { call_recording: { agent_ws_url: `ws://127.0.0.1:${port}/latest/meta-data/` } } },
      'voice_tools.call_recording.agent_ws_url',
    ],
    [
      '/api/agents/inside',
      { voice_tools: { call_recording: { agent_ws_urls: ['wss://runtime.example/', `ws://localhost:${port}/`] } } },
      'voice_tools.call_recording.agent_ws_urls.1',
    ],
    ['/api/tenants/default', { webhook_url: `http://127.0.0.1:${port}/hook` }, 'webhook_url'],
    ['/api/tenants/default', { webhook_url: `https://[::ffff:127.0.0.1]:${port}/hook` }, 'webhook_url'],
    [
      '/api/tenants/default',
      { storage_url: 's3://bucket/rec', storage_credentials: { ...credentials, endpoint: `http://localhost:${port}` } },
      'storage_credentials.endpoint',
    ],
  ];
}

describe('with EGRESS_ALLOW empty', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ env: { EGRESS_ALLOW: '' } });
  });
  afterAll(() => ts?.close());

  test('PATCH refuses a runtime, webhook or S3 endpoint on an internal host, naming the field; and a webhook over plain http', async () => {
    const cases = [
      ...internalSettings(listener.port),
      ['/api/tenants/default', { webhook_url: 'http://hooks.example/in' }, 'webhook_url'] as [string, unknown, string],
    ];
    for (const [pathname, body, field] of cases) {
      const res = await patch(ts, pathname, body);
      expect([pathname, res.status]).toEqual([pathname, 400]);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'ERR_EGRESS_REFUSED', field });
    }
    expect(listener.connections()).toBe(0);
  });

  test("settings stored before the policy still reach nothing: runtimes, a stream's agent_url, the tenant's bucket and webhook", async () => {
    const port = listener.port;
    await ts.agent('inside', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      agent_ws_url: `ws://127.0.0.1:${port}/latest/meta-data/iam/security-credentials/`,
    });
    await ts.agent('outside', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      agent_ws_url: 'wss://runtime.example/',
    });
    // In real time: at full speed the whole capture, stop included, is held until the call is live, and ends it at once.
    const stream = (agentId: string, query = '') =>
      replayFixture(fixture, {
        url: `${ts.wsUrl}/media/twilio${query}`,
        agentId,
        token: ts.key,
        callId: uniqueCallId(agentId),
        speed: 'realtime',
      });

    const direct = await stream('inside');
    expect([direct.closeCode, direct.closeReason]).toEqual([
      1008,
      expect.stringMatching(/^ERR_EGRESS_REFUSED: agent_ws_url: 127\.0\.0\.1 is an internal address/),
    ]);
    // A media key cannot name a runtime its agent does not list.
    const picked = await stream('outside', `?agent_url=${encodeURIComponent(`ws://127.0.0.1:${port}/`)}`);
    expect([picked.closeCode, picked.closeReason]).toEqual([
      1008,
      expect.stringMatching(/^ERR_EGRESS_REFUSED: agent_url: not one of the agent's runtimes/),
    ]);

    // The tenant's bucket and webhook, sealed as the API would have stored them.
    const keyring = await MasterKeyring.load({ dataDir: ts.dataDir, masterKey: ts.cluster.masterKey });
    const settings = {
      webhook_url: `http://127.0.0.1:${port}/hook`,
      storage_url: 's3://bucket/rec',
      storage_credentials: {
        access_key_id: 'AKIAEXAMPLE',
        secret_access_key: 'secret-example-key',
        endpoint: `http://127.0.0.1:${port}`,
      },
    };
    await ts.server.store.tenants.updateSettings(ts.tenantId, (current) =>
      applySettingsPatch(keyring, ts.tenantId, current, settings, { operator: true }),
    );
    await ts.agent('forked', { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
    const callId = uniqueCallId('forked');
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'forked',
      token: ts.key,
      callId,
      speed: 'max',
    });
    const rec = await ts.recording(callId);
    expect(rec).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^ERR_EGRESS_REFUSED: storage_endpoint: 127\.0\.0\.1 is an internal address/),
    });
    // Its `recording.failed` webhook is refused too, at once (retrying would not change the answer).
    const webhooks = createWebhookQueue({ url: REDIS_URL }, ts.cluster.prefix);
    try {
      await until('the webhook delivery failed', async () => (await webhooks.getFailedCount()) > 0);
      const [failed] = await webhooks.getFailed();
      expect(failed.failedReason).toMatch(/^webhook_url: must be an https:\/\/ URL/);
      expect(failed.attemptsMade).toBe(1);
    } finally {
      await webhooks.close();
    }
    expect(listener.connections()).toBe(0);
    const metrics = await (await fetch(`${ts.server.url}/metrics`)).text();
    for (const target of ['agent_ws_url', 'agent_url', 'storage_endpoint', 'webhook_url']) {
      expect(metrics).toMatch(new RegExp(`^callrec_egress_refused_total\\{target="${target}"\\} [1-9]`, 'm'));
    }
  }, 60_000);
});

test('EGRESS_ALLOW naming the listener lets every setting through, and the node connects to it', async () => {
  const ts = await startTestServer({ env: { EGRESS_ALLOW: '127.0.0.1,localhost' } });
  try {
    for (const [pathname, body] of internalSettings(listener.port))
      expect([pathname, (await patch(ts, pathname, body)).status]).toEqual([pathname, 200]);
    const before = listener.connections();
    await ts.agent('inside', { enabled: true, agent_ws_url: `ws://127.0.0.1:${listener.port}/` });
    const replay = replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'inside',
      token: ts.key,
      callId: uniqueCallId('allowed'),
      speed: 'max',
    });
    await until('the node connects to the allowed runtime', () => listener.connections() > before);
    await replay;
  } finally {
    await ts.close();
  }
}, 60_000);
