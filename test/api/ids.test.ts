import http from 'node:http';
import { isSafeId } from '../../src/ids.js';
import { objectKeyFor } from '../../workers/recording.js';
import { startApi, type ApiHarness } from './harness.js';

describe('safe ids', () => {
  it('accepts provider call ids and refuses what could name another path', () => {
    for (const id of [
      'CA1234567890abcdef',
      'v3:MdI91X4lWFEs7IgbBEOT9M4Aigo_Y08M0',
      'agent.support-1',
      'a',
      'x'.repeat(128),
      '...',
    ]) {
      expect(isSafeId(id)).toBe(true);
    }
    for (const id of ['', '.', '..', 'a/b', 'a\\b', 'a b', 'é', 'x'.repeat(129), 'a\nb', '%2e%2e', 42]) {
      expect(isSafeId(id)).toBe(false);
    }
  });

  it('keeps object keys in their folder whatever the ids', () => {
    const at = '2026-12-03T10:00:00.000Z';
    for (const bad of ['.', '..', '../..', 'a/../../b']) {
      const key = objectKeyFor(bad, bad, 'rec-1', 'mp3', at);
      const segments = key.split('/');
      expect(segments).toHaveLength(6);
      expect(segments.slice(1, 4)).toEqual(['2026', '12', '03']);
      for (const segment of segments) expect(['.', '..']).not.toContain(segment);
    }
  });
});

describe('ids on every API route', () => {
  let api: ApiHarness;
  let admin: string;
  const operator = 'operator-secret-of-this-test';

  beforeAll(async () => {
    api = await startApi('sqlite');
    await api.store.tenants.ensure('t1', 'One');
    admin = (await api.store.keys.create({ tenantId: 't1', name: 'admin', scopes: ['admin'] })).secret;
    await api.store.keys.ensureOperatorKey(operator);
  });

  afterAll(() => api.close());

  /** `fetch` would resolve `.` and `..` segments (`%2E%2E` too) before sending; a hostile client need not. */
  function rawRequest(method: string, pathname: string, body: unknown): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        `${api.url}/`,
        {
          method,
          path: pathname,
          headers: { authorization: `Bearer ${admin}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  // `%2E%2E` reaches the route as `..`, `%2F` as `/`: what a client could smuggle past the router.
  const badIds = ['..', '%2E%2E', '.', 'a%2Fb', 'a%20b'];

  it.each([
    ['GET', '/api/calls/{}', 'callId', undefined],
    ['GET', '/api/calls/{}/recording', 'callId', undefined],
    ['DELETE', '/api/calls/{}/recording', 'callId', undefined],
    ['PUT', '/api/calls/{}/legal-hold', 'callId', { hold: true, reason: 'r' }],
    ['POST', '/api/calls/{}/recording', 'callId', { action: 'stop' }],
    ['GET', '/api/agents/{}', 'agentId', undefined],
    ['PATCH', '/agents/{}', 'agentId', { voice_tools: { call_recording: { enabled: true } } }],
    ['GET', '/api/agents/{}/audit', 'agentId', undefined],
    ['DELETE', '/api/keys/{}', 'keyId', undefined],
    ['GET', '/api/tenants/{}', 'tenantId', undefined],
    ['PATCH', '/api/tenants/{}', 'tenantId', {}],
  ])('%s %s refuses unsafe ids naming %s', async (method, route, field, body) => {
    for (const id of badIds) {
      const res = await rawRequest(method, route.replace('{}', id), body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'ERR_VALIDATION', field });
      expect(res.body.error.message).toContain('letters, digits or - _ . :');
    }
  });

  it('refuses unsafe ids in bodies and queries', async () => {
    const tenant = await api.request('POST', '/api/tenants', operator, { id: 'x'.repeat(129), name: 'long' });
    expect(tenant.status).toBe(400);
    expect(tenant.body.error).toMatchObject({ code: 'ERR_VALIDATION', field: 'id' });
    const key = await api.request('POST', '/api/keys', operator, { name: 'k', scopes: ['admin'], tenant_id: 'a/b' });
    expect(key.status).toBe(400);
    expect(key.body.error).toMatchObject({ code: 'ERR_VALIDATION', field: 'tenant_id' });
    const list = await api.request('GET', '/api/calls?agent_id=..', admin);
    expect(list.status).toBe(400);
    expect(list.body.error).toMatchObject({ code: 'ERR_VALIDATION', field: 'agent_id' });
  });

  it('still serves ordinary provider ids', async () => {
    await api.addCall('t1', 'v3:call.id_1-x', { ended: true });
    const res = await api.request('GET', '/api/calls/v3:call.id_1-x', admin);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe('v3:call.id_1-x');
  });
});
