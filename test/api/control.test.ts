import { CallrecError, type ErrorCode } from '../../src/errors.js';
import { TEST_DB_KINDS } from '../helpers/db.js';
import { startApi, type ApiHarness } from './harness.js';

describe.each(TEST_DB_KINDS)('call control API on %s', (kind) => {
  let api: ApiHarness;
  let controller: string;
  let other: string;

  beforeAll(async () => {
    api = await startApi(kind);
    await api.store.tenants.ensure('t1', 'One');
    await api.store.tenants.ensure('t2', 'Two');
    controller = (await api.store.keys.create({ tenantId: 't1', name: 'ctl', scopes: ['calls:control'] })).secret;
    other = (await api.store.keys.create({ tenantId: 't2', name: 'other', scopes: ['admin'] })).secret;
    await api.addCall('t1', 'live-1');
    await api.addCall('t1', 'ended-1', { ended: true });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    api.control.requests.length = 0;
  });

  test.each([
    ['start', 'recording'],
    ['pause', 'paused'],
    ['resume', 'recording'],
    ['stop', 'processing'],
  ])("%s is passed to the control bus for the tenant's call and its outcome returned", async (action, status) => {
    const res = await api.request('POST', '/api/calls/live-1/recording', controller, { action });
    expect(res).toEqual({ status: 200, body: { call_id: 'live-1', action, recording_status: status } });
    expect(api.control.requests).toEqual([{ tenantId: 't1', callId: 'live-1', action }]);
  });

  test("unknown calls and another tenant's calls are 404 and never reach the bus", async () => {
    expect((await api.request('POST', '/api/calls/nobody/recording', controller, { action: 'start' })).status).toBe(
      404,
    );
    expect((await api.request('POST', '/api/calls/live-1/recording', other, { action: 'start' })).status).toBe(404);
    expect(api.control.requests).toEqual([]);
  });

  test('an ended call is 409', async () => {
    const res = await api.request('POST', '/api/calls/ended-1/recording', controller, { action: 'pause' });
    expect(res).toMatchObject({
      status: 409,
      body: { error: { code: 'ERR_CONFLICT', message: 'call ended-1 has ended' } },
    });
    expect(api.control.requests).toEqual([]);
  });

  test.each<[ErrorCode, string, number]>([
    ['ERR_NOT_FOUND', 'no node holds call live-1', 404],
    ['ERR_CONFLICT', 'the recording is already paused', 409],
    ['ERR_UNAVAILABLE', 'no media node answered', 503],
  ])('the bus rejecting with %s ("%s") is %d with that message', async (code, message, status) => {
    api.control.failNext = new CallrecError(code, message);
    const res = await api.request('POST', '/api/calls/live-1/recording', controller, { action: 'pause' });
    expect(res).toEqual({ status, body: { error: { code, message } } });
  });

  test('any other failure of the bus is a 500 that leaks nothing', async () => {
    api.control.failNext = new CallrecError('ERR_REDIS_UNAVAILABLE', 'connection refused 10.0.0.7:6379');
    const res = await api.request('POST', '/api/calls/live-1/recording', controller, { action: 'pause' });
    expect(res).toEqual({ status: 500, body: { error: { code: 'ERR_INTERNAL', message: 'internal server error' } } });
  });

  test.each([
    ['a missing action', {}, 'action'],
    ['an unknown action', { action: 'rewind' }, 'action'],
    ['an unknown field', { action: 'start', force: true }, 'force'],
  ])('%s is 400 naming the field', async (_, body, field) => {
    const res = await api.request('POST', '/api/calls/live-1/recording', controller, body);
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'ERR_VALIDATION', field } } });
    expect(api.control.requests).toEqual([]);
  });
});
