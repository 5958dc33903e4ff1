import { loadConfig } from '../../src/config.js';
import { readyCall, startTestServer, type TestServer } from '../helpers/server.js';

/** Reads a recording claiming to be `forwardedFor` and returns the address the access log kept. */
async function loggedAddress(ts: TestServer, forwardedFor: string): Promise<string> {
  const callId = await readyCall(ts);
  const res = await ts.api(`/api/calls/${callId}/recording`, { headers: { 'x-forwarded-for': forwardedFor } });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  const [entry] = await ts.server.store.accessLog.list(ts.tenantId, callId);
  return entry.ip;
}

describe('HTTP hardening', () => {
  let ts: TestServer;
  let other: string;

  beforeAll(async () => {
    ts = await startTestServer({ env: { AUTH_FAILURES_PER_IP: '5', RATE_LIMIT_PER_KEY: '8' } });
    other = (await ts.server.store.keys.create({ tenantId: ts.tenantId, name: 'other', scopes: ['recordings:read'] }))
      .secret;
  });
  afterAll(() => ts.close());

  it('sends security headers, with a CSP that allows the node itself and does not force HTTPS', async () => {
    for (const res of [await fetch(`${ts.server.url}/healthz`), await ts.api('/api/agents')]) {
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'self'");
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    }
  });

  it('answers a burst of bad keys from one address 429 with Retry-After, while good keys keep working', async () => {
    // Without TRUST_PROXY a client cannot spread its guesses over made-up addresses.
    const guess = (i: number) =>
      fetch(`${ts.server.url}/api/agents`, {
        headers: { authorization: `Bearer crk_guess${i}`, 'x-forwarded-for': `203.0.113.${i}` },
      });
    for (let i = 0; i < 5; i++) expect((await guess(i)).status).toBe(401);
    const limited = await guess(5);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as any).error.code).toBe('ERR_RATE_LIMITED');
    expect((await fetch(`${ts.server.url}/api/agents`, { headers: { authorization: `Bearer ${other}` } })).status).toBe(
      200,
    );
  });

  it('limits the requests of each key, not of its neighbours', async () => {
    const { secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'busy',
      scopes: ['recordings:read'],
    });
    const get = (key: string) => fetch(`${ts.server.url}/api/agents`, { headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 8; i++) expect((await get(secret)).status).toBe(200);
    const limited = await get(secret);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await get(ts.key)).status).toBe(200);
  });

  it('logs the TCP peer, not what X-Forwarded-For claims, when no proxy is trusted', async () => {
    expect(await loggedAddress(ts, '198.51.100.7')).toBe('127.0.0.1');
  });
});

describe('TRUST_PROXY', () => {
  it('believes X-Forwarded-For only from the listed proxies', async () => {
    const ts = await startTestServer({ env: { TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' } });
    try {
      expect(await loggedAddress(ts, '198.51.100.7')).toBe('198.51.100.7');
    } finally {
      await ts.close();
    }
  });

  it('is validated with an error naming the variable', () => {
    for (const bad of ['proxy.example', '10.0.0.0/33', '::1/129', '10.0.0.1/8/2', '10.0.0/8']) {
      expect(() => loadConfig({ TRUST_PROXY: bad })).toThrow(/^TRUST_PROXY: /);
    }
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8,::1, 192.168.1.4' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '::1',
      '192.168.1.4',
    ]);
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(() => loadConfig({ RATE_LIMIT_PER_KEY: '0' })).toThrow(/^RATE_LIMIT_PER_KEY: /);
    expect(() => loadConfig({ AUTH_FAILURES_PER_IP: 'many' })).toThrow(/^AUTH_FAILURES_PER_IP: /);
  });
});
