import { startTestServer, type TestServer } from '../helpers/server.js';

/** A node with METRICS_PORT: the node's figures (every tenant's) only on its internal port. */
describe('METRICS_PORT', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ env: { METRICS_PORT: '0' } });
  });
  afterAll(() => ts?.close());

  test('the API port serves /healthz only; /metrics and /readyz are 404 there', async () => {
    expect(ts.server.metricsUrl).not.toBeNull();
    expect(ts.server.metricsUrl).not.toBe(ts.server.url);
    expect((await fetch(`${ts.server.url}/healthz`)).status).toBe(200);
    for (const pathname of ['/metrics', '/readyz'])
      expect((await fetch(`${ts.server.url}${pathname}`)).status).toBe(404);
  });

  test("the internal port serves /metrics (with the node's series) and /readyz (with its checks)", async () => {
    const metrics = await fetch(`${ts.server.metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^callrec_calls_active 0$/m);
    expect(text).toContain('callrec_stream_limit_total');
    const readyz = await fetch(`${ts.server.metricsUrl}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toEqual({
      status: 'ok',
      checks: { database: true, redis: true, storage: true, spool_disk: true },
    });
  });
});

test('without METRICS_PORT the API port serves both, as before; /readyz shows only whether each dependency answers, no counts', async () => {
  const ts = await startTestServer();
  try {
    expect(ts.server.metricsUrl).toBeNull();
    expect((await fetch(`${ts.server.url}/metrics`)).status).toBe(200);
    const body = (await (await fetch(`${ts.server.url}/readyz`)).json()) as {
      status: string;
      checks: Record<string, unknown>;
    };
    expect(Object.keys(body)).toEqual(['status', 'checks']);
    for (const value of Object.values(body.checks)) expect(typeof value).toBe('boolean');
  } finally {
    await ts.close();
  }
});
