import os from 'node:os';
import { CallrecError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { readyCall, startTestServer, type TestServer } from '../helpers/server.js';

type Line = Record<string, any>;

/** A logger whose JSON lines the test reads. */
function capture(level = 'info') {
  const lines: Line[] = [];
  const log = createLogger(level, {
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
  });
  return { log, lines };
}

let ts: TestServer;
const { log, lines } = capture();
beforeAll(async () => {
  ts = await startTestServer({ log });
});
afterAll(() => ts.close());

/** The request lines so far that answered `route`. */
function requests(route: string): Line[] {
  return lines.filter((line) => line.msg === 'request' && line.route === route);
}

async function until<T>(read: () => T | undefined): Promise<T> {
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('every line names the node, the process and the host', async () => {
  await ts.api('/api/calls');
  expect(lines.length).toBeGreaterThan(1);
  for (const line of lines)
    expect(line).toMatchObject({ service: 'callrec', pid: process.pid, host: os.hostname(), node: expect.any(String) });
});

test('one line per API request: method, route pattern, status, duration and request id; never a key, a token or a header', async () => {
  const callId = await readyCall(ts);
  const minted = (await (
    await ts.api(`/api/calls/${callId}/recording/url`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
  ).json()) as { url: string };
  const token = new URL(minted.url, ts.server.url).searchParams.get('token')!;
  const played = await fetch(ts.server.url + minted.url, { headers: { 'x-request-id': 'proxy-7f3a' } });
  expect(played.status).toBe(200);
  expect(played.headers.get('x-request-id')).toBe('proxy-7f3a');
  const refused = await fetch(`${ts.server.url}/api/calls`, {
    headers: { authorization: 'Bearer crk_not_a_real_key_0123456789' },
  });
  expect(refused.status).toBe(401);

  const play = await until(() => requests('/api/calls/:callId/recording').find((line) => line.reqId === 'proxy-7f3a'));
  expect(play).toMatchObject({ level: 30, method: 'GET', status: 200, durationMs: expect.any(Number) });
  expect(await until(() => requests('/api/calls/:callId/recording/url')[0])).toMatchObject({
    method: 'POST',
    status: 200,
    reqId: expect.any(String),
  });
  const denied = await until(() => requests('/api/calls').find((line) => line.status === 401));
  expect(denied.reqId).toBe(refused.headers.get('x-request-id'));
  // A caller's id that is no plain token is replaced, not logged.
  const odd = await fetch(`${ts.server.url}/healthz`, { headers: { 'x-request-id': 'a"b c' } });
  expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

  const text = lines.map((line) => JSON.stringify(line)).join('\n');
  for (const secret of [ts.key, token, 'crk_not_a_real_key_0123456789', callId])
    expect([secret, text.includes(secret)]).toEqual([secret, false]);
  expect(text.toLowerCase()).not.toContain('authorization');
});

test('probes and scrapes log at debug, not at info', async () => {
  await fetch(`${ts.server.url}/healthz`);
  await fetch(`${ts.server.url}/metrics`);
  await ts.api('/api/calls');
  await until(() => requests('/api/calls').at(-1));
  expect(requests('/healthz')).toEqual([]);
  expect(requests('/metrics')).toEqual([]);
});

test('errors are logged as `err`: type, message and stack', () => {
  const { log, lines } = capture();
  log.warn({ err: new CallrecError('ERR_CONFIG', 'boom') }, 'failed');
  expect(lines[0].err).toMatchObject({
    type: 'CallrecError',
    message: 'boom',
    code: 'ERR_CONFIG',
    stack: expect.stringContaining('logs.test.ts'),
  });
});
