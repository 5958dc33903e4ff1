import path from 'node:path';
import { PassThrough } from 'node:stream';
import { runReplay, type ReplayCommandOptions } from '../../src/replay/command.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { closedPort, runCli } from '../helpers/cli.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-connect-caller.jsonl');
/** Short, so most of the 5 s capture comes after it. */
const MESSAGE = 'This call is recorded.';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
  const consent = { enabled: true, auto_record: true, consent_prompt: true, consent_message: MESSAGE };
  await ts.agent('announce', consent);
  await ts.agent('ask', { ...consent, consent_mode: 'two_party', consent_digit: '1', consent_timeout_seconds: 1 });
});
afterAll(() => ts.close());

async function replay(agentId: string, extra: Partial<ReplayCommandOptions> = {}) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const summary = await runReplay({
    files: [FIXTURE],
    url: ts.wsUrl,
    agentId,
    token: ts.key,
    speed: 'realtime',
    concurrency: 1,
    progress: null,
    out,
    ...extra,
  });
  const call = (await (await ts.api(`/api/calls/${summary.calls[0].callId}`)).json()) as Record<string, any>;
  return { summary, call, text };
}

test("an agent with the consent prompt on: replay confirms the prompt's mark and the call is recorded", async () => {
  const { summary, call, text } = await replay('announce');
  expect(summary.failed).toBe(0);
  expect(summary.calls[0].recording).toBe('ready');
  expect(text).toMatch(/^ok .* recording=ready /m);
  expect(call.consent).toMatchObject({ outcome: 'announced', message: MESSAGE });
  // Capture starts where the prompt ended: the rest of the 5 s call is recorded, not less, not more.
  const promptEnd = call.consent.prompt_ended_ms as number;
  expect(promptEnd).toBeGreaterThan(500);
  expect(call.recording.duration_ms).toBeGreaterThan(5000 - promptEnd - 200);
  expect(call.recording.duration_ms).toBeLessThanOrEqual(5000 - promptEnd + 100);
});

test('two-party consent: --dtmf 1 presses the key after the prompt and the call is recorded', async () => {
  const { summary, call } = await replay('ask', { dtmf: '1' });
  expect(summary.calls[0]).toMatchObject({ failed: false, recording: 'ready' });
  expect(call.consent).toMatchObject({ outcome: 'agreed', digit: '1' });
});

test('two-party consent without the key: nothing is recorded, and replay fails the call saying so', async () => {
  const { summary, call, text } = await replay('ask');
  expect(call.consent.outcome).toBe('timeout');
  expect(summary.calls[0]).toMatchObject({ failed: true, closeCode: 1000, recording: 'none' });
  expect(text).toMatch(/^FAIL .* recording=none /m);
});

test('`callrec replay` with the server down exits non-zero with one clear line', async () => {
  const port = await closedPort();
  const { code, stderr } = await runCli(['replay', FIXTURE, '--url', `127.0.0.1:${port}`, '--agent', 'announce'], {
    env: { CALLREC_TOKEN: 'x' },
  });
  expect(code).toBe(1);
  expect(stderr.trim()).toMatch(
    new RegExp(
      `^callrec: cannot reach a callrec server at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\); is \`callrec serve\` running there\\?$`,
    ),
  );
});

test('an AudioHook capture replays at /media/genesys, the provider read from the capture, its key as X-API-KEY', async () => {
  await ts.agent('genesys-replay', { enabled: true, auto_record: true, consent_prompt: false });
  const out = new PassThrough();
  const genesys = path.resolve(import.meta.dirname, '../../fixtures/genesys-audiohook-tones.jsonl');
  const summary = await runReplay({
    files: [genesys],
    url: ts.wsUrl,
    agentId: 'genesys-replay',
    token: ts.key,
    speed: 'max',
    concurrency: 1,
    progress: null,
    out,
  });
  expect(summary.calls[0]).toMatchObject({ failed: false, closeCode: 1000, recording: 'ready' });
  const call = (await (await ts.api(`/api/calls/${summary.calls[0].callId}`)).json()) as Record<string, any>;
  expect(call).toMatchObject({ provider: 'genesys', agent_id: 'genesys-replay' });
});
