import type { Scope } from '../../src/auth/scopes.js';
import { TEST_DB_KINDS } from '../helpers/db.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * Who may do what (SPEC §3), for every API route, every kind of caller, on a resource of the
 * caller's own tenant and on one of another tenant. The table is written out by hand: it is the
 * specification the auth code is checked against, so it must not be derived from that code.
 */

/** Callers: a key of tenant `acme` per scope, the operator's key (tenant `default`), and three that must not get in. */
const CALLERS = [
  'admin',
  'agents:write',
  'recordings:read',
  'recordings:delete',
  'calls:control',
  'media:stream',
  'operator',
  'no key',
  'bad key',
  'revoked key',
] as const;
type Caller = (typeof CALLERS)[number];

/** One status per caller, in `CALLERS` order. */
type Row = [number, number, number, number, number, number, number, number, number, number];

const ROUTES = [
  'GET /healthz',
  'GET /readyz',
  'GET /api/agents',
  'GET /api/agents/:id',
  'GET /agents/:id',
  'PATCH /api/agents/:id',
  'PATCH /agents/:id',
  'GET /api/agents/:id/audit',
  'GET /api/calls',
  'GET /api/calls/:id',
  'GET /api/calls/:id/recording',
  'DELETE /api/calls/:id/recording',
  'POST /api/calls/:id/recording/url',
  'GET /api/calls/:id/recording/peaks',
  'POST /api/calls/:id/recording',
  'PUT /api/calls/:id/legal-hold',
  'POST /api/keys',
  'GET /api/keys',
  'DELETE /api/keys/:id',
  'POST /api/tenants',
  'GET /api/me',
] as const;
type Route = (typeof ROUTES)[number];

/**
 * `own`: the resource belongs to the caller's tenant. `other`: to another tenant (for the key
 * routes, the request names that tenant with `tenant_id`). `other` is null where a route has
 * no resource of a tenant to point at (health, lists of one's own tenant, tenant creation).
 */
const EXPECTED: Record<Route, { own: Row; other: Row | null }> = {
  //                                  admin agents:w rec:read rec:del control stream operator none  bad   revoked
  'GET /healthz': { own: [200, 200, 200, 200, 200, 200, 200, 200, 200, 200], other: null },
  'GET /readyz': { own: [200, 200, 200, 200, 200, 200, 200, 200, 200, 200], other: null },
  'GET /api/agents': { own: [200, 200, 200, 403, 403, 403, 200, 401, 401, 401], other: null },
  'GET /api/agents/:id': {
    own: [200, 200, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 404, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  'GET /agents/:id': {
    own: [200, 200, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 404, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  // Agent ids are per tenant: PATCHing an id another tenant uses creates the caller's own agent (see the test below).
  'PATCH /api/agents/:id': {
    own: [200, 200, 403, 403, 403, 403, 200, 401, 401, 401],
    other: [200, 200, 403, 403, 403, 403, 200, 401, 401, 401],
  },
  'PATCH /agents/:id': {
    own: [200, 200, 403, 403, 403, 403, 200, 401, 401, 401],
    other: [200, 200, 403, 403, 403, 403, 200, 401, 401, 401],
  },
  'GET /api/agents/:id/audit': {
    own: [200, 200, 403, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 404, 403, 403, 403, 403, 404, 401, 401, 401],
  },
  'GET /api/calls': { own: [200, 403, 200, 403, 403, 403, 200, 401, 401, 401], other: null },
  'GET /api/calls/:id': {
    own: [200, 403, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  'GET /api/calls/:id/recording': {
    own: [200, 403, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  'DELETE /api/calls/:id/recording': {
    own: [200, 403, 403, 200, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 403, 404, 403, 403, 404, 401, 401, 401],
  },
  'POST /api/calls/:id/recording/url': {
    own: [200, 403, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  'GET /api/calls/:id/recording/peaks': {
    own: [200, 403, 200, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 404, 403, 403, 403, 404, 401, 401, 401],
  },
  'POST /api/calls/:id/recording': {
    own: [200, 403, 403, 403, 200, 403, 200, 401, 401, 401],
    other: [404, 403, 403, 403, 404, 403, 404, 401, 401, 401],
  },
  'PUT /api/calls/:id/legal-hold': {
    own: [200, 403, 403, 403, 403, 403, 200, 401, 401, 401],
    other: [404, 403, 403, 403, 403, 403, 404, 401, 401, 401],
  },
  // Only the operator's key reaches another tenant's keys.
  'POST /api/keys': {
    own: [201, 403, 403, 403, 403, 403, 201, 401, 401, 401],
    other: [403, 403, 403, 403, 403, 403, 201, 401, 401, 401],
  },
  'GET /api/keys': {
    own: [200, 403, 403, 403, 403, 403, 200, 401, 401, 401],
    other: [403, 403, 403, 403, 403, 403, 200, 401, 401, 401],
  },
  'DELETE /api/keys/:id': {
    own: [204, 403, 403, 403, 403, 403, 204, 401, 401, 401],
    other: [403, 403, 403, 403, 403, 403, 204, 401, 401, 401],
  },
  'POST /api/tenants': { own: [403, 403, 403, 403, 403, 403, 201, 401, 401, 401], other: null },
  'GET /api/me': { own: [200, 200, 200, 200, 200, 200, 200, 401, 401, 401], other: null },
};

const OPERATOR_SECRET = 'operator-secret-for-the-matrix';
const OTHER_TENANT = 'globex';

/** A request against a resource made for it, and a check that a refused request left that resource as it was. */
interface Scenario {
  method: string;
  path: string;
  body?: unknown;
  untouched?: () => Promise<void>;
}

describe.each(TEST_DB_KINDS)('auth matrix on %s', (kind) => {
  let api: ApiHarness;
  const secrets = new Map<Caller, string | null>();
  let serial = 0;
  const unique = (label: string) => `${label}-${++serial}`;

  beforeAll(async () => {
    api = await startApi(kind);
    const { store } = api;
    await store.keys.ensureOperatorKey(OPERATOR_SECRET);
    await store.tenants.ensure('acme', 'Acme');
    await store.tenants.ensure(OTHER_TENANT, 'Globex');
    for (const scope of [
      'admin',
      'agents:write',
      'recordings:read',
      'recordings:delete',
      'calls:control',
      'media:stream',
    ] satisfies Scope[]) {
      secrets.set(scope, (await store.keys.create({ tenantId: 'acme', name: scope, scopes: [scope] })).secret);
    }
    secrets.set('operator', OPERATOR_SECRET);
    secrets.set('no key', null);
    secrets.set('bad key', 'crk_this-key-was-never-issued');
    const revoked = await store.keys.create({ tenantId: 'acme', name: 'revoked', scopes: ['admin'] });
    await store.keys.revoke('acme', revoked.key.id);
    secrets.set('revoked key', revoked.secret);
  });
  afterAll(() => api.close());

  /** Builds each route's request against a fresh resource of `tenant`. */
  const scenarios: Record<Route, (tenant: string) => Promise<Scenario>> = {
    'GET /healthz': async () => ({ method: 'GET', path: '/healthz' }),
    'GET /readyz': async () => ({ method: 'GET', path: '/readyz' }),
    'GET /api/agents': async () => ({ method: 'GET', path: '/api/agents' }),
    'GET /api/agents/:id': async (tenant) => ({ method: 'GET', path: `/api/agents/${await agent(tenant)}` }),
    'GET /agents/:id': async (tenant) => ({ method: 'GET', path: `/agents/${await agent(tenant)}` }),
    'PATCH /api/agents/:id': (tenant) => patchAgent('/api', tenant),
    'PATCH /agents/:id': (tenant) => patchAgent('', tenant),
    'GET /api/agents/:id/audit': async (tenant) => ({
      method: 'GET',
      path: `/api/agents/${await agent(tenant)}/audit`,
    }),
    'GET /api/calls': async () => ({ method: 'GET', path: '/api/calls' }),
    'GET /api/calls/:id': async (tenant) => ({ method: 'GET', path: `/api/calls/${await call(tenant, 'ready')}` }),
    'GET /api/calls/:id/recording': async (tenant) => ({
      method: 'GET',
      path: `/api/calls/${await call(tenant, 'ready')}/recording`,
    }),
    'POST /api/calls/:id/recording/url': async (tenant) => ({
      method: 'POST',
      path: `/api/calls/${await call(tenant, 'ready')}/recording/url`,
      body: {},
    }),
    'GET /api/calls/:id/recording/peaks': async (tenant) => ({
      method: 'GET',
      path: `/api/calls/${await call(tenant, 'ready')}/recording/peaks`,
    }),
    'DELETE /api/calls/:id/recording': async (tenant) => {
      const id = await call(tenant, 'ready');
      const { objectKey } = (await api.store.recordings.getByCall(tenant, id))!;
      return {
        method: 'DELETE',
        path: `/api/calls/${id}/recording`,
        untouched: async () => {
          expect((await api.store.recordings.getByCall(tenant, id))!.status).toBe('ready');
          expect(await api.storage.exists(objectKey!)).toBe(true);
          expect(await api.store.tombstones.list(tenant, id)).toEqual([]);
        },
      };
    },
    'POST /api/calls/:id/recording': async (tenant) => {
      const id = await call(tenant);
      return {
        method: 'POST',
        path: `/api/calls/${id}/recording`,
        body: { action: 'start' },
        untouched: async () => expect(api.control.requests.filter((r) => r.callId === id)).toEqual([]),
      };
    },
    'PUT /api/calls/:id/legal-hold': async (tenant) => {
      const id = await call(tenant, 'ready');
      return {
        method: 'PUT',
        path: `/api/calls/${id}/legal-hold`,
        body: { hold: true, reason: 'matrix' },
        untouched: async () => {
          expect((await api.store.calls.get(tenant, id))!.legalHold).toBe(false);
          expect(await api.store.calls.audit(tenant, id)).toEqual([]);
        },
      };
    },
    'POST /api/keys': async (tenant) => {
      const name = unique('issued');
      return {
        method: 'POST',
        path: '/api/keys',
        body: { name, scopes: ['recordings:read'], tenant_id: tenant },
        untouched: async () => expect((await api.store.keys.list(tenant)).map((key) => key.name)).not.toContain(name),
      };
    },
    'GET /api/keys': async (tenant) => ({ method: 'GET', path: `/api/keys?tenant_id=${tenant}` }),
    'DELETE /api/keys/:id': async (tenant) => {
      const { key } = await api.store.keys.create({
        tenantId: tenant,
        name: unique('victim'),
        scopes: ['recordings:read'],
      });
      return {
        method: 'DELETE',
        path: `/api/keys/${key.id}?tenant_id=${tenant}`,
        untouched: async () => expect((await api.store.keys.get(tenant, key.id))!.revokedAt).toBeNull(),
      };
    },
    'GET /api/me': async () => ({ method: 'GET', path: '/api/me' }),
    'POST /api/tenants': async () => {
      const id = unique('tenant');
      return {
        method: 'POST',
        path: '/api/tenants',
        body: { id, name: id },
        untouched: async () => expect(await api.store.tenants.get(id)).toBeNull(),
      };
    },
  };

  async function agent(tenant: string): Promise<string> {
    const id = unique('agent');
    await api.store.agents.patch(tenant, id, { voice_tools: { call_recording: { enabled: true } } }, null);
    return id;
  }

  async function patchAgent(prefix: string, tenant: string): Promise<Scenario> {
    const id = await agent(tenant);
    return {
      method: 'PATCH',
      path: `${prefix}/agents/${id}`,
      body: { voice_tools: { call_recording: { storage_days: 7 } } },
      untouched: async () =>
        expect((await api.store.agents.get(tenant, id))!.settings).toEqual({
          voice_tools: { call_recording: { enabled: true } },
        }),
    };
  }

  /** A call of `tenant`: live, or ended with a recording in `recording` state. */
  async function call(tenant: string, recording?: 'ready'): Promise<string> {
    const id = unique('call');
    await api.addCall(tenant, id, recording ? { ended: true, recording } : {});
    return id;
  }

  const ownTenant = (caller: Caller) => (caller === 'operator' ? 'default' : 'acme');

  const cells = ROUTES.flatMap((route) =>
    (['own', 'other'] as const).flatMap((whose) => {
      const row = EXPECTED[route][whose];
      return row === null ? [] : CALLERS.map((caller, i) => ({ route, whose, caller, status: row[i] }));
    }),
  );

  test.each(cells)('$route on $whose resource by $caller → $status', async ({ route, whose, caller, status }) => {
    const scenario = await scenarios[route](whose === 'own' ? ownTenant(caller) : OTHER_TENANT);
    const res = await api.request(scenario.method, scenario.path, secrets.get(caller)!, scenario.body);
    expect(res.status).toBe(status);
    if (status >= 400) {
      expect(res.body.error.code).toBe({ 401: 'ERR_UNAUTHORIZED', 403: 'ERR_FORBIDDEN', 404: 'ERR_NOT_FOUND' }[status]);
      await scenario.untouched?.();
    }
  });

  test("PATCH of an id another tenant uses creates the caller's own agent and leaves the other's alone", async () => {
    const id = await agent(OTHER_TENANT);
    const res = await api.request('PATCH', `/api/agents/${id}`, secrets.get('agents:write')!, {
      voice_tools: { call_recording: { storage_days: 7 } },
    });
    expect(res.status).toBe(200);
    expect((await api.store.agents.get('acme', id))!.settings).toEqual({
      voice_tools: { call_recording: { storage_days: 7 } },
    });
    expect((await api.store.agents.get(OTHER_TENANT, id))!.settings).toEqual({
      voice_tools: { call_recording: { enabled: true } },
    });
  });

  test("lists show the caller's own tenant only", async () => {
    const foreignCall = await call(OTHER_TENANT, 'ready');
    const foreignAgent = await agent(OTHER_TENANT);
    const calls = await api.request('GET', '/api/calls', secrets.get('admin')!);
    expect(calls.body.data.map((c: { id: string }) => c.id)).not.toContain(foreignCall);
    const agents = await api.request('GET', '/api/agents', secrets.get('admin')!);
    expect(agents.body.data.map((a: { id: string }) => a.id)).not.toContain(foreignAgent);
    const keys = await api.request('GET', '/api/keys', secrets.get('admin')!);
    expect(new Set(keys.body.data.map((k: { tenant_id: string }) => k.tenant_id))).toEqual(new Set(['acme']));
  });
});
