import path from 'node:path';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { decoderFor, encoderFor } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture, type ReplayResult } from '../../src/replay/client.js';
import { decodeAudio, findBursts } from '../helpers/audio.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const MULAW: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
const REPLY_MS = 300;

/**
 * A voice-agent runtime speaking Twilio's protocol, as a customer would run it: whenever the
 * caller's audio turns from silence to tone it answers with a 1500 Hz burst (20 ms media
 * messages, sent at once as runtimes do) and a mark.
 */
class ToneAnsweringRuntime {
  readonly wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  readonly received: Array<Record<string, any>> = [];
  readonly sent: string[] = [];
  #decode = decoderFor(MULAW);
  #encode = encoderFor(MULAW);

  constructor() {
    this.wss.on('connection', (ws) => ws.on('message', (data) => this.#onMessage(ws, JSON.parse(data.toString()))));
  }

  get url(): string {
    const address = this.wss.address();
    return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  #loud = false;
  #onMessage(ws: WebSocket, message: Record<string, any>): void {
    this.received.push(message);
    if (message.event !== 'media') return;
    const pcm = new Int16Array(160);
    this.#decode(Buffer.from(message.media.payload, 'base64'), pcm);
    const loud = pcm.some((s) => Math.abs(s) > 1000);
    if (loud && !this.#loud) this.#answer(ws, message.streamSid);
    this.#loud = loud;
  }

  #answer(ws: WebSocket, streamSid: string): void {
    const samples = (REPLY_MS * 8000) / 1000;
    const tone = new Int16Array(samples);
    for (let i = 0; i < samples; i++) tone[i] = Math.round(12000 * Math.sin((2 * Math.PI * 1500 * i) / 8000));
    for (let offset = 0; offset < samples; offset += 160) {
      const payload = this.#encode(tone.subarray(offset, offset + 160)).toString('base64');
      this.#send(ws, JSON.stringify({ event: 'media', streamSid, media: { payload } }));
    }
    this.#send(ws, JSON.stringify({ event: 'mark', streamSid, mark: { name: `reply-${this.sent.length}` } }));
  }

  #send(ws: WebSocket, text: string): void {
    this.sent.push(text);
    ws.send(text);
  }
}

let ts: TestServer;
let runtime: ToneAnsweringRuntime;
let fixture: Fixture;
let callId: string;
let result: ReplayResult;
const echoedMarks: string[] = [];

beforeAll(async () => {
  ts = await startTestServer();
  runtime = new ToneAnsweringRuntime();
  await once(runtime.wss, 'listening');
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-connect-caller.jsonl'));
  await ts.agent('bridged-agent', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav', agent_ws_url: runtime.url });
  callId = uniqueCallId('bridge');
  // Paced in real time: in bridge mode the runtime's audio is placed by when it arrives.
  result = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: 'bridged-agent',
    token: ts.key,
    callId,
    speed: 'realtime',
    closeAfterMs: 200,
    onMessage(data, _binary, reply) {
      const message = JSON.parse(data.toString());
      // Twilio echoes a mark once the audio sent before it has played.
      if (message.event === 'mark') {
        echoedMarks.push(message.mark.name);
        reply(JSON.stringify({ event: 'mark', sequenceNumber: '99', streamSid: message.streamSid, mark: message.mark }), false);
      }
    },
  });
}, 30_000);

afterAll(async () => {
  runtime?.wss.close();
  await ts?.close();
});

test('the provider receives the runtime\'s messages byte for byte, in order', () => {
  expect(runtime.sent.length).toBe(3 * (REPLY_MS / 20 + 1));
  expect(result.received.map((m) => m.data.toString())).toEqual(runtime.sent);
});

test('the runtime receives the stream as the provider sent it, without callrec\'s token', () => {
  const callerFrames = fixture.messages.filter((m) => !m.binary && (m.data as string).includes('"event":"media"')).map((m) => JSON.parse(m.data as string).media.payload);
  const relayed = runtime.received.filter((m) => m.event === 'media').map((m) => m.media.payload);
  expect(relayed).toEqual(callerFrames);
  const start = runtime.received.find((m) => m.event === 'start')!;
  expect(runtime.received[0].event).toBe('connected');
  expect(start.start.customParameters).toEqual({ agent_id: 'bridged-agent', call_id: callId });
  expect(start.start.tracks).toEqual(['inbound']);
});

test('marks round-trip from the runtime to the provider and back', () => {
  const sentMarks = runtime.sent.map((m) => JSON.parse(m)).filter((m) => m.event === 'mark').map((m) => m.mark.name);
  expect(sentMarks).toHaveLength(3);
  expect(echoedMarks).toEqual(sentMarks);
  expect(runtime.received.filter((m) => m.event === 'mark').map((m) => m.mark.name)).toEqual(echoedMarks);
});

test('the recording holds both legs, each agent reply where the caller heard it', async () => {
  const rec = await ts.recording(callId);
  expect(rec.status).toBe('ready');
  const res = await ts.api(`/api/calls/${callId}/recording`);
  const audio = await decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
  expect(audio.channels).toHaveLength(2);
  const callerBursts = findBursts(audio.channels[0], audio.sampleRate, 1000);
  expect(callerBursts.map((b) => b.startMs)).toEqual(fixture.meta.bursts.map((b) => expect.closeTo(b.startMs, 0)));
  const agentBursts = findBursts(audio.channels[1], audio.sampleRate, 1500);
  expect(agentBursts).toHaveLength(callerBursts.length);
  agentBursts.forEach((reply, i) => {
    // The runtime answers the first 20 ms frame holding the tone; callrec places the reply at
    // the caller stream's clock when it arrived: the end of that frame, or one frame later.
    const heard = reply.startMs - callerBursts[i].startMs;
    expect(heard).toBeGreaterThan(0);
    expect(heard).toBeLessThanOrEqual(60);
    expect(reply.endMs - reply.startMs).toBeCloseTo(REPLY_MS, 0);
  });
  // Nothing of the caller on the agent channel and the reverse.
  expect(findBursts(audio.channels[1], audio.sampleRate, 1000)).toEqual([]);
  expect(findBursts(audio.channels[0], audio.sampleRate, 1500)).toEqual([]);
  const call = (await (await ts.api(`/api/calls/${callId}`)).json()) as Record<string, unknown>;
  expect(call).toMatchObject({ mode: 'bridge', legs: ['caller', 'agent'], recording_status: 'ready' });
  expect(call.alignment).toMatchObject({ framesDropped: 0, agentAudioUnplayedMs: 0 });
});
