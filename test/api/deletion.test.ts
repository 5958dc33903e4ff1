import { TEST_DB_KINDS } from '../helpers/db.js';
import { startApi, type ApiHarness } from './harness.js';

describe.each(TEST_DB_KINDS)('recording deletion and legal hold API on %s', (kind) => {
  let api: ApiHarness;
  let admin: string;
  let adminKeyId: string;
  let deleter: string;
  let deleterKeyId: string;
  let reader: string;
  let otherAdmin: string;

  beforeAll(async () => {
    api = await startApi(kind);
    await api.store.tenants.ensure('t1', 'One');
    await api.store.tenants.ensure('t2', 'Two');
    ({
      secret: admin,
      key: { id: adminKeyId },
    } = await api.store.keys.create({ tenantId: 't1', name: 'admin', scopes: ['admin'] }));
    ({
      secret: deleter,
      key: { id: deleterKeyId },
    } = await api.store.keys.create({ tenantId: 't1', name: 'deleter', scopes: ['recordings:delete'] }));
    reader = (await api.store.keys.create({ tenantId: 't1', name: 'reader', scopes: ['recordings:read'] })).secret;
    otherAdmin = (await api.store.keys.create({ tenantId: 't2', name: 'other', scopes: ['admin'] })).secret;
  });
  afterAll(() => api.close());

  test('DELETE removes the object, keeps a tombstone, and the recording is gone from the API', async () => {
    const { objectKey } = await api.addCall('t1', 'del-1', { ended: true, recording: 'ready' });
    expect((await api.request('GET', '/api/calls/del-1/recording', reader)).status).toBe(200);

    const res = await api.request('DELETE', '/api/calls/del-1/recording', deleter);
    expect(res).toEqual({ status: 200, body: { call_id: 'del-1', recording_status: 'deleted' } });
    expect(await api.storage.exists(objectKey!)).toBe(false);
    const [tombstone] = await api.store.tombstones.list('t1', 'del-1');
    expect(tombstone).toMatchObject({ objectKey, deletedBy: deleterKeyId, reason: 'api' });

    expect((await api.request('GET', '/api/calls/del-1/recording', reader)).status).toBe(404);
    const call = await api.request('GET', '/api/calls/del-1', reader);
    expect(call.body).toMatchObject({ recording_status: 'deleted', recording: { status: 'deleted' } });
    const again = await api.request('DELETE', '/api/calls/del-1/recording', deleter);
    expect(again).toMatchObject({ status: 404, body: { error: { code: 'ERR_NOT_FOUND' } } });
  });

  test("404 without a recording, for unknown calls and for another tenant's call", async () => {
    await api.addCall('t1', 'del-none', { ended: true });
    const { objectKey } = await api.addCall('t1', 'del-foreign', { ended: true, recording: 'ready' });
    expect((await api.request('DELETE', '/api/calls/del-none/recording', deleter)).status).toBe(404);
    expect((await api.request('DELETE', '/api/calls/nobody/recording', deleter)).status).toBe(404);
    expect((await api.request('DELETE', '/api/calls/del-foreign/recording', otherAdmin)).status).toBe(404);
    expect(await api.storage.exists(objectKey!)).toBe(true);
  });

  test.each(['recording', 'paused', 'processing'] as const)('409 while the recording is %s', async (status) => {
    await api.addCall('t1', `del-${status}`, { recording: status });
    const res = await api.request('DELETE', `/api/calls/del-${status}/recording`, deleter);
    expect(res).toMatchObject({
      status: 409,
      body: { error: { code: 'ERR_CONFLICT', message: expect.stringContaining(status) } },
    });
    expect(await api.store.tombstones.list('t1', `del-${status}`)).toEqual([]);
  });

  test('a legal hold blocks deletion with 423 until released; every change is audited', async () => {
    const { objectKey } = await api.addCall('t1', 'held', { ended: true, recording: 'ready' });
    const held = await api.request('PUT', '/api/calls/held/legal-hold', admin, { hold: true, reason: 'Case 2024-117' });
    expect(held).toMatchObject({
      status: 200,
      body: { id: 'held', legal_hold: true, legal_hold_reason: 'Case 2024-117', recording_status: 'ready' },
    });
    expect((await api.request('GET', '/api/calls/held', reader)).body).toMatchObject({ legal_hold: true });

    const blocked = await api.request('DELETE', '/api/calls/held/recording', deleter);
    expect(blocked).toMatchObject({ status: 423, body: { error: { code: 'ERR_LEGAL_HOLD' } } });
    expect(await api.storage.exists(objectKey!)).toBe(true);
    expect(await api.store.tombstones.list('t1', 'held')).toEqual([]);

    const released = await api.request('PUT', '/api/calls/held/legal-hold', admin, {
      hold: false,
      reason: 'Case closed',
    });
    expect(released).toMatchObject({ status: 200, body: { legal_hold: false, legal_hold_reason: null } });
    expect((await api.request('DELETE', '/api/calls/held/recording', deleter)).status).toBe(200);
    expect(await api.storage.exists(objectKey!)).toBe(false);

    const audit = await api.store.calls.audit('t1', 'held');
    expect(audit.map(({ keyId, action, before, after }) => ({ keyId, action, before, after }))).toEqual([
      {
        keyId: adminKeyId,
        action: 'legal_hold',
        before: { legal_hold: false, reason: null },
        after: { legal_hold: true, reason: 'Case 2024-117' },
      },
      {
        keyId: adminKeyId,
        action: 'legal_hold',
        before: { legal_hold: true, reason: 'Case 2024-117' },
        after: { legal_hold: false, reason: 'Case closed' },
      },
    ]);
  });

  test("legal hold: 404 for another tenant's call, admin only, body validated naming the field", async () => {
    await api.addCall('t1', 'hold-rules', { ended: true });
    expect(
      (await api.request('PUT', '/api/calls/hold-rules/legal-hold', otherAdmin, { hold: true, reason: 'x' })).status,
    ).toBe(404);
    expect(
      (await api.request('PUT', '/api/calls/hold-rules/legal-hold', deleter, { hold: true, reason: 'x' })).status,
    ).toBe(403);
    const cases: [unknown, string][] = [
      [{ reason: 'x' }, 'hold'],
      [{ hold: 'yes', reason: 'x' }, 'hold'],
      [{ hold: true }, 'reason'],
      [{ hold: true, reason: '' }, 'reason'],
      [{ hold: true, reason: 'x'.repeat(501) }, 'reason'],
      [{ hold: true, reason: 'x', until: 'forever' }, 'until'],
    ];
    for (const [body, field] of cases) {
      const res = await api.request('PUT', '/api/calls/hold-rules/legal-hold', admin, body);
      expect(res).toMatchObject({ status: 400, body: { error: { code: 'ERR_VALIDATION', field } } });
    }
    expect(await api.store.calls.audit('t1', 'hold-rules')).toEqual([]);
    expect((await api.store.calls.get('t1', 'hold-rules'))!.legalHold).toBe(false);
  });
});
