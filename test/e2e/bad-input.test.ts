import path from 'node:path';
import WebSocket from 'ws';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { isStart, replayFixture, rewriteStart } from '../../src/replay/client.js';
import type { Provider } from '../../src/protocols/types.js';
import { KITS } from '../protocols/kits.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

let ts: TestServer;
let fixture: Fixture;
let startMessage: Record<string, any>;
const AGENT = 'steady-agent';

beforeAll(async () => {
  ts = await startTestServer();
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  startMessage = JSON.parse(
    fixture.messages.find((m) => (m.data as string).includes('"event":"start"'))!.data as string,
  );
  await ts.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' });
});
afterAll(() => ts?.close());

/** A Twilio start message with these custom parameters / media format. */
function start(params: Record<string, string>, encoding = 'audio/x-mulaw'): string {
  const message = structuredClone(startMessage);
  message.start.customParameters = params;
  message.start.mediaFormat.encoding = encoding;
  return JSON.stringify(message);
}

const media = (payload: string) =>
  JSON.stringify({
    event: 'media',
    sequenceNumber: '3',
    streamSid: startMessage.streamSid,
    media: { track: 'inbound', chunk: '1', timestamp: '0', payload },
  });

/** Sends `messages` on a fresh stream (Twilio's unless said) and resolves with how the server closed it. */
async function misbehave(
  messages: Array<string | Buffer>,
  provider: Provider = 'twilio',
): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${ts.wsUrl}/media/${provider}`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  await new Promise((resolve) => ws.once('open', resolve));
  for (const m of messages) ws.send(m);
  return closed;
}

/** Streams the fixture as a well-behaved provider and returns the recording's bytes. */
async function goodCall(): Promise<{ callId: string; audio: Buffer }> {
  const callId = uniqueCallId('good');
  const result = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: AGENT,
    token: ts.key,
    callId,
    speed: 20,
  });
  expect(result.closeCode).toBe(1000);
  expect((await ts.recording(callId)).status).toBe('ready');
  const res = await ts.api(`/api/calls/${callId}/recording`);
  return { callId, audio: Buffer.from(await res.arrayBuffer()) };
}

const CONNECTED = JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' });

test('each kind of bad input is closed with a clear code and reason, records nothing, and a concurrent call is unaffected', async () => {
  const alone = await goodCall();
  const badCallIds: string[] = [];
  const withId = (params: Record<string, string>) => {
    const callId = uniqueCallId('bad');
    badCallIds.push(callId);
    return { ...params, call_id: callId };
  };

  const cases: Array<[string, Array<string | Buffer>, number, RegExp]> = [
    ['malformed JSON', [CONNECTED, '{"event": "start", '], 1007, /^ERR_MALFORMED_MESSAGE: /],
    ['unknown event', [CONNECTED, JSON.stringify({ event: 'teleport' })], 1003, /^ERR_UNKNOWN_EVENT: .*teleport/],
    ['oversize message', [CONNECTED, 'x'.repeat(200 * 1024)], 1009, /^ERR_MESSAGE_TOO_LARGE: /],
    [
      'wrong codec',
      [start(withId({ agent_id: AGENT, token: ts.key }), 'audio/x-opus')],
      1003,
      /^ERR_UNSUPPORTED_CODEC: /,
    ],
    ['missing agent_id', [start(withId({ token: ts.key }))], 1008, /^ERR_MISSING_AGENT: /],
    ['unknown agent_id', [start(withId({ agent_id: 'nobody', token: ts.key }))], 1008, /^ERR_UNKNOWN_AGENT: .*nobody/],
    ['bad token', [start(withId({ agent_id: AGENT, token: 'crk_not-a-key' }))], 1008, /^ERR_BAD_TOKEN: /],
    ['no token', [start(withId({ agent_id: AGENT }))], 1008, /^ERR_BAD_TOKEN: /],
    ['media before start', [CONNECTED, media('/////w==')], 1008, /^ERR_UNEXPECTED_MESSAGE: /],
    [
      'a call id already streamed',
      [start({ agent_id: AGENT, token: ts.key, call_id: alone.callId })],
      1008,
      /^ERR_CALL_EXISTS: /,
    ],
  ];
  const [concurrent, ...outcomes] = await Promise.all([
    goodCall(),
    ...cases.map(([, messages]) => misbehave(messages)),
  ]);

  outcomes.forEach((outcome, i) => {
    const [name, , code, reason] = cases[i];
    expect({ name, code: outcome.code }).toEqual({ name, code });
    expect(outcome.reason).toMatch(reason);
  });
  for (const callId of badCallIds) expect(await ts.server.store.calls.get(ts.tenantId, callId)).toBeNull();
  expect(concurrent.audio.equals(alone.audio)).toBe(true);
  expect((await fetch(`${ts.server.url}/healthz`)).status).toBe(200);
});

test('bad base64 mid-call closes the stream and keeps what was recorded so far', async () => {
  const callId = uniqueCallId('midcall');
  const firstFrames = fixture.messages.slice(0, 40).map((m) => m.data as string);
  firstFrames[1] = start({ agent_id: AGENT, token: ts.key, call_id: callId });
  const outcome = await misbehave([...firstFrames, media('!!not base64!!')]);
  expect(outcome.code).toBe(1007);
  expect(outcome.reason).toMatch(/^ERR_BAD_PAYLOAD: /);
  const rec = await ts.recording(callId);
  expect(rec.status).toBe('ready');
  const call = await ts.server.store.calls.get(ts.tenantId, callId);
  expect(call).toMatchObject({ status: 'ended', endReason: expect.stringMatching(/^ERR_BAD_PAYLOAD/) });
});

// Each platform added with issue 19, through its own endpoint: what its adapter refuses closes
// the stream with the code and reason, and what was recorded before a bad frame is kept.
test.each([
  ['signalwire', 'signalwire-fork-tones'],
  ['plivo', 'plivo-fork-tones'],
  ['exotel', 'exotel-voicebot-caller'],
  ['bandwidth', 'bandwidth-fork-tones'],
] as const)(
  '%s: malformed, unknown, unsupported codec, and bad audio mid-call, each closed with its code and reason',
  async (provider, name) => {
    const kit = KITS[provider];
    const text = (frame: { data: Buffer }) => frame.data.toString();
    expect(await misbehave(['{"event": "start", '], provider)).toEqual({
      code: 1007,
      reason: expect.stringMatching(/^ERR_MALFORMED_MESSAGE: /),
    });
    expect(await misbehave([text(kit.unknownEvent!)], provider)).toEqual({
      code: 1003,
      reason: expect.stringMatching(/^ERR_UNKNOWN_EVENT: /),
    });
    expect(await misbehave([text(kit.unsupportedCodecStart)], provider)).toEqual({
      code: 1003,
      reason: expect.stringMatching(/^ERR_UNSUPPORTED_CODEC: /),
    });

    const capture = await readFixture(path.join(import.meta.dirname, `../../fixtures/${name}.jsonl`));
    const callId = uniqueCallId(`midcall-${provider}`);
    const firstFrames = capture.messages
      .slice(0, 40)
      .map((m) =>
        isStart(provider, m)
          ? rewriteStart(provider, m.data as string, { agentId: AGENT, token: ts.key, callId })
          : (m.data as string),
      );
    const outcome = await misbehave([...firstFrames, text(kit.badPayload(50))], provider);
    expect(outcome).toEqual({ code: 1007, reason: expect.stringMatching(/^ERR_BAD_PAYLOAD: /) });
    expect((await ts.recording(callId)).status).toBe('ready');
  },
);
