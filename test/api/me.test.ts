import { startTestServer, type TestServer } from '../helpers/server.js';

describe('GET /api/me', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts?.close());

  test('names the key, its tenant and scopes; the test call is off when Telnyx is not configured', async () => {
    const { key, secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'listener',
      scopes: ['recordings:read', 'recordings:delete'],
    });
    const res = await fetch(`${ts.server.url}/api/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      tenant_id: ts.tenantId,
      key: { id: key.id, name: 'listener', scopes: ['recordings:read', 'recordings:delete'] },
      operator: false,
      features: { test_call: false },
    });
  });

  test('any valid key may ask, whatever its scopes', async () => {
    const { secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'streamer',
      scopes: ['media:stream'],
    });
    const res = await fetch(`${ts.server.url}/api/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { key: { scopes: string[] } }).key.scopes).toEqual(['media:stream']);
  });

  test('a wrong or revoked key is a 401', async () => {
    const wrong = await fetch(`${ts.server.url}/api/me`, { headers: { authorization: 'Bearer crk_never-issued' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('ERR_UNAUTHORIZED');
    const { key, secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'gone',
      scopes: ['admin'],
    });
    await ts.server.store.keys.revoke(ts.tenantId, key.id);
    const revoked = await fetch(`${ts.server.url}/api/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(revoked.status).toBe(401);
  });
});
