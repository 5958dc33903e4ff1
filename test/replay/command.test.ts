import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { WebSocketServer } from 'ws';
import { endpointUrl, parseSpeed, runReplay } from '../../src/replay/command.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');

/** A provider endpoint stand-in: notes each connection's path and call_id; hangs up with 1008 on call_ids it is told to. */
async function endpoint(reject: (callId: string) => boolean) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const seen: Array<{ path: string; callId: string }> = [];
  wss.on('connection', (ws, req) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as {
        event?: string;
        start?: Record<string, Record<string, string> | undefined>;
      };
      if (message.event !== 'start') return;
      // Twilio names the parameters customParameters, Telnyx custom_parameters.
      const params = message.start?.customParameters ?? message.start?.custom_parameters;
      const callId = params?.call_id ?? '';
      seen.push({ path: req.url ?? '', callId });
      if (reject(callId)) ws.close(1008, 'ERR_BAD_TOKEN: nope');
    });
  });
  const base = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  return { seen, base, close: () => new Promise((r) => wss.close(r)) };
}

function collect() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { out, text: () => text };
}

test('endpointUrl appends the provider path to a base and keeps a full endpoint', () => {
  expect(endpointUrl('ws://127.0.0.1:8080', 'telnyx')).toBe('ws://127.0.0.1:8080/media/telnyx');
  expect(endpointUrl('http://h:1/', 'twilio')).toBe('ws://h:1/media/twilio');
  expect(endpointUrl('ws://h:1/media/vonage?x=1', 'twilio')).toBe('ws://h:1/media/vonage?x=1');
  expect(() => endpointUrl('ftp://h', 'twilio')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
});

test('endpointUrl takes the server address in every form people type it', () => {
  for (const [typed, endpoint] of [
    ['localhost:8080', 'ws://localhost:8080/media/twilio'],
    ['127.0.0.1:8080/', 'ws://127.0.0.1:8080/media/twilio'],
    ['http://localhost:8080', 'ws://localhost:8080/media/twilio'],
    ['https://rec.example.com', 'wss://rec.example.com/media/twilio'],
    ['wss://rec.example.com/media/telnyx', 'wss://rec.example.com/media/telnyx'],
    [' ws://[::1]:8080 ', 'ws://[::1]:8080/media/twilio'],
  ]) {
    expect([typed, endpointUrl(typed, 'twilio')]).toEqual([typed, endpoint]);
  }
  for (const bad of ['', 'http://', 'ftp://h:1'])
    expect(() => endpointUrl(bad, 'twilio')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
});

test('parseSpeed takes realtime, max or a positive multiplier', () => {
  expect(parseSpeed('realtime')).toBe('realtime');
  expect(parseSpeed('max')).toBe('max');
  expect(parseSpeed('4')).toBe(4);
  expect(() => parseSpeed('0')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
});

test('repeats the files to --calls, unique call ids, counts calls closed with an error code', async () => {
  const server = await endpoint((callId) => callId.endsWith('-2'));
  const { out, text } = collect();
  try {
    const files = [path.join(FIXTURES, 'telnyx-fork-pcma.jsonl'), path.join(FIXTURES, 'twilio-connect-caller.jsonl')];
    const summary = await runReplay({
      files,
      url: server.base,
      agentId: 'a1',
      token: 't',
      speed: 'max',
      concurrency: 2,
      calls: 3,
      checkRecording: false,
      progress: null,
      out,
    });
    expect(summary.calls).toHaveLength(3);
    expect(summary.failed).toBe(1);
    const failed = summary.calls.find((c) => c.failed)!;
    expect(failed.closeCode).toBe(1008);
    expect(failed.callId).toMatch(/-2$/);
    // Default provider comes from each fixture's meta; the files repeat in order.
    expect(server.seen.map((s) => s.path).sort()).toEqual(['/media/telnyx', '/media/telnyx', '/media/twilio']);
    expect(new Set(server.seen.map((s) => s.callId)).size).toBe(3);
    expect(summary.calls.filter((c) => !c.failed).every((c) => c.closeCode === 1000 && c.sent > 0)).toBe(true);
    expect(text()).toMatch(/FAIL .*-2 .*close=1008 ERR_BAD_TOKEN: nope/);
    expect(text()).toMatch(/3 calls, 2 ok, 1 failed/);
  } finally {
    await server.close();
  }
});

test('--repeat streams each file that many times, in order', async () => {
  const server = await endpoint(() => false);
  const { out } = collect();
  try {
    const files = [path.join(FIXTURES, 'telnyx-fork-pcma.jsonl'), path.join(FIXTURES, 'twilio-connect-caller.jsonl')];
    const summary = await runReplay({
      files,
      url: server.base,
      speed: 'max',
      concurrency: 1,
      repeat: 2,
      checkRecording: false,
      progress: null,
      out,
    });
    expect(summary.calls.map((c) => path.basename(c.file))).toEqual([
      'telnyx-fork-pcma.jsonl',
      'telnyx-fork-pcma.jsonl',
      'twilio-connect-caller.jsonl',
      'twilio-connect-caller.jsonl',
    ]);
    expect(summary.failed).toBe(0);
  } finally {
    await server.close();
  }
});
