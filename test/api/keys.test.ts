import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { apiPlugin } from '../../src/api/index.js';
import { SCOPES, scopesBeyond, type Principal, type Scope } from '../../src/auth/scopes.js';
import { apiServices, type ApiServices } from '../helpers/api-deps.js';
import { createTestStore, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { ScriptedControl } from './harness.js';

const OPERATOR_SECRET = 'operator-secret-for-tests';

describe.each(TEST_DB_KINDS)('keys and tenants API on %s', (kind) => {
  let t: TestStore;
  let app: FastifyInstance;
  let base: string;
  let admin: string;
  let services: ApiServices;

  beforeAll(async () => {
    t = await createTestStore(kind);
    await t.store.keys.ensureOperatorKey(OPERATOR_SECRET);
    await t.store.tenants.ensure('acme', 'Acme');
    admin = (await t.store.keys.create({ tenantId: 'acme', name: 'acme admin', scopes: ['admin'] })).secret;
    app = Fastify({ logger: false });
    services = await apiServices(t.store, await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-keys-')));
    const { storage, keyring, webhooks, transcodes } = services;
    await app.register(apiPlugin, {
      store: t.store,
      storage,
      egress: webhooks.egress,
      keyring,
      webhooks,
      transcodes,
      control: new ScriptedControl(),
      readiness: async () => ({}),
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await app.close();
    await services.close();
    await t.cleanup();
  });

  // Bodies are untyped JSON; the assertions that read them are the check.
  const request = async (
    method: string,
    url: string,
    secret: string,
    body?: unknown,
  ): Promise<{ status: number; body: any }> => {
    const res = await fetch(base + url, {
      method,
      headers: {
        authorization: `Bearer ${secret}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };

  test('the operator creates a tenant and a key for it; the secret works once issued and stops when revoked', async () => {
    expect(await request('POST', '/api/tenants', OPERATOR_SECRET, { id: 'globex', name: 'Globex' })).toMatchObject({
      status: 201,
      body: { id: 'globex' },
    });
    expect((await request('POST', '/api/tenants', OPERATOR_SECRET, { id: 'globex', name: 'Again' })).status).toBe(409);

    const created = await request('POST', '/api/keys', OPERATOR_SECRET, {
      name: 'globex reader',
      scopes: ['recordings:read'],
      tenant_id: 'globex',
    });
    expect(created).toMatchObject({
      status: 201,
      body: { tenant_id: 'globex', scopes: ['recordings:read'], secret: expect.stringMatching(/^crk_/) },
    });
    const secret: string = created.body.secret;
    expect((await request('GET', '/api/calls', secret)).status).toBe(200);

    const listed = await request('GET', '/api/keys?tenant_id=globex', OPERATOR_SECRET);
    expect(listed.body.data).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(secret);

    expect((await request('DELETE', `/api/keys/${created.body.id}?tenant_id=globex`, OPERATOR_SECRET)).status).toBe(
      204,
    );
    expect((await request('GET', '/api/calls', secret)).status).toBe(401);
    expect((await request('DELETE', `/api/keys/${created.body.id}?tenant_id=globex`, OPERATOR_SECRET)).status).toBe(
      404,
    );
  });

  test('a tenant admin manages its own keys only and cannot create tenants', async () => {
    const own = await request('POST', '/api/keys', admin, { name: 'agent editor', scopes: ['agents:write'] });
    expect(own).toMatchObject({ status: 201, body: { tenant_id: 'acme', operator: false } });
    expect(
      (await request('POST', '/api/keys', admin, { name: 'x', scopes: ['admin'], tenant_id: 'default' })).body.error
        .code,
    ).toBe('ERR_FORBIDDEN');
    expect((await request('GET', '/api/keys?tenant_id=default', admin)).status).toBe(403);
    expect((await request('POST', '/api/tenants', admin, { id: 'evil', name: 'Evil' })).status).toBe(403);
    // The operator's key belongs to tenant `default`: from acme it is simply not there.
    const operatorKeyId = (await t.store.keys.list('default'))[0].id;
    expect((await request('DELETE', `/api/keys/${operatorKeyId}`, admin)).status).toBe(404);
    expect((await request('POST', '/api/keys', own.body.secret, { name: 'y', scopes: ['admin'] })).status).toBe(403);
  });

  test('only the operator may revoke the operator key, even from its own tenant', async () => {
    const defaultAdmin = await request('POST', '/api/keys', OPERATOR_SECRET, {
      name: 'default admin',
      scopes: ['admin'],
    });
    const operatorKeyId = (await t.store.keys.list('default')).find((key) => key.operator)!.id;
    const refused = await request('DELETE', `/api/keys/${operatorKeyId}`, defaultAdmin.body.secret);
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'ERR_FORBIDDEN' } } });
    expect((await request('GET', '/api/keys', OPERATOR_SECRET)).status).toBe(200);
    // The operator revokes the tenant admin; that key fails from its very next request.
    expect((await request('DELETE', `/api/keys/${defaultAdmin.body.id}`, OPERATOR_SECRET)).status).toBe(204);
    expect((await request('GET', '/api/keys', defaultAdmin.body.secret)).status).toBe(401);
  });

  test("the operator lists every tenant's keys and reads and revokes any of them by id alone", async () => {
    await request('POST', '/api/tenants', OPERATOR_SECRET, { id: 'initech', name: 'Initech' });
    const created = await request('POST', '/api/keys', OPERATOR_SECRET, {
      name: 'initech reader',
      scopes: ['recordings:read'],
      tenant_id: 'initech',
    });
    const { id, secret } = created.body;

    const all = await request('GET', '/api/keys', OPERATOR_SECRET);
    const tenants = all.body.data.map((key: { tenant_id: string }) => key.tenant_id);
    expect(tenants).toEqual(expect.arrayContaining(['default', 'acme', 'initech']));
    expect(
      (await request('GET', '/api/keys?tenant_id=initech', OPERATOR_SECRET)).body.data.map(
        (key: { id: string }) => key.id,
      ),
    ).toEqual([id]);
    expect(await request('GET', `/api/keys/${id}`, OPERATOR_SECRET)).toMatchObject({
      status: 200,
      body: { id, tenant_id: 'initech', revoked_at: null },
    });
    // Naming the wrong tenant does not find it.
    expect((await request('DELETE', `/api/keys/${id}?tenant_id=acme`, OPERATOR_SECRET)).status).toBe(404);

    // Another tenant's admin neither sees nor revokes it.
    expect(
      (await request('GET', '/api/keys', admin)).body.data.every(
        (key: { tenant_id: string }) => key.tenant_id === 'acme',
      ),
    ).toBe(true);
    expect((await request('GET', `/api/keys/${id}`, admin)).status).toBe(404);
    expect((await request('DELETE', `/api/keys/${id}`, admin)).status).toBe(404);
    expect((await request('GET', '/api/calls', secret)).status).toBe(200);

    expect((await request('DELETE', `/api/keys/${id}`, OPERATOR_SECRET)).status).toBe(204);
    expect((await request('GET', '/api/calls', secret)).status).toBe(401);
    expect((await request('GET', `/api/keys/${id}`, OPERATOR_SECRET)).body.revoked_at).toEqual(expect.any(String));
    expect((await request('DELETE', `/api/keys/${id}`, OPERATOR_SECRET)).status).toBe(404);
  });

  test('key bodies are validated', async () => {
    const bad = await request('POST', '/api/keys', admin, { name: 'x', scopes: ['root'] });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'ERR_VALIDATION', field: 'scopes.0' } } });
    expect((await request('POST', '/api/keys', admin, { name: 'x', scopes: [] })).body.error.field).toBe('scopes');
    expect(
      (await request('POST', '/api/keys', OPERATOR_SECRET, { name: 'x', scopes: ['admin'], tenant_id: 'nobody' }))
        .status,
    ).toBe(404);
  });
});

describe('scopesBeyond', () => {
  const principal = (scopes: Scope[]): Principal => ({ keyId: 'k', tenantId: 't', scopes, operator: false });

  test('a key can hand out only scopes it holds; admin holds them all', () => {
    expect(scopesBeyond(principal(['recordings:read']), ['recordings:read'])).toEqual([]);
    expect(scopesBeyond(principal(['recordings:read']), ['recordings:read', 'recordings:delete', 'admin'])).toEqual([
      'recordings:delete',
      'admin',
    ]);
    expect(scopesBeyond(principal(['admin']), [...SCOPES])).toEqual([]);
  });
});
