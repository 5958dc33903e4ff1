import path from 'node:path';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture, type ReplayResult } from '../../src/replay/client.js';
import { decodeAudio, findBursts } from '../helpers/audio.js';
import {
  callerAudio,
  formatOf,
  markEcho,
  NO_MARKS,
  playedMark,
  readToProvider,
  ToneAnsweringRuntime,
  toneStartOffsets,
} from '../helpers/bridge.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const REPLY_MS = 300;

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.close());

// The same voice-agent runtime, speaking each provider's own protocol, behind callrec. None of
// these start messages asks for a bridge: the agent's agent_ws_url and a stream that can carry
// audio back make it one (SPEC §4). The Telnyx capture carries both tracks, and its start does
// not say so: the provider's agent track must not be recorded as the agent.
const BRIDGED = [
  'twilio-connect-caller',
  'telnyx-fork-pcma',
  'vonage-tones',
  'plivo-bidirectional-caller',
  'exotel-voicebot-caller',
  'exotel-voicebot-24k',
  'bandwidth-bidirectional-caller',
  'jambonz-mono-24k',
  'freeswitch-mono',
  'asterisk-slin48',
];
describe.each(BRIDGED)('bridge on %s', (name) => {
  let runtime: ToneAnsweringRuntime;
  let fixture: Fixture;
  let callId: string;
  let result: ReplayResult;
  const echoedMarks: string[] = [];
  /** Bandwidth, FreeSWITCH and ACS confirm no playback: their runtimes send audio and no marks. */
  let hasMarks: boolean;
  /** Messages in one reply of the runtime's: its 20 ms frames, and a mark where the platform has them. */
  let messagesPerReply: number;

  beforeAll(async () => {
    fixture = await readFixture(path.join(import.meta.dirname, `../../fixtures/${name}.jsonl`));
    const { provider } = fixture.meta;
    hasMarks = !NO_MARKS.has(provider);
    messagesPerReply = REPLY_MS / 20 + (hasMarks ? 1 : 0);
    runtime = await ToneAnsweringRuntime.start({ provider, format: formatOf(fixture), replyMs: REPLY_MS });
    const agentId = `bridged-${provider}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      dual_channel: true,
      format: 'wav',
      agent_ws_url: runtime.url,
    });
    callId = uniqueCallId(`bridge-${provider}`);
    // Paced in real time: in bridge mode the runtime's audio is placed by when it arrives.
    result = await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/${provider}`,
      agentId,
      token: ts.key,
      callId,
      speed: 'realtime',
      closeAfterMs: 200,
      onMessage(data, binary, reply) {
        // The provider echoes a mark once the audio sent before it has played.
        const said = readToProvider({ data, binary });
        if (said.type !== 'mark') return;
        echoedMarks.push(said.name);
        reply(markEcho(fixture, said.name), false);
      },
    });
  }, 30_000);

  afterAll(() => runtime?.close());

  test("the provider receives the runtime's messages byte for byte, in order", () => {
    const callerBursts = fixture.meta.bursts.filter((b) => b.leg === 'caller').length;
    expect(runtime.sent).toHaveLength(callerBursts * messagesPerReply);
    expect(result.received.map((m) => ({ data: m.data, binary: m.binary }))).toEqual(runtime.sent);
  });

  test("the runtime receives the caller's audio as the provider sent it, and a start without callrec's token", () => {
    const sentByProvider = fixture.messages.map((m) =>
      callerAudio({ data: m.binary ? (m.data as Buffer) : Buffer.from(m.data as string), binary: m.binary }),
    );
    const relayed = runtime.received.map(callerAudio);
    expect(relayed.filter((a) => a !== null)).toEqual(sentByProvider.filter((a) => a !== null));
    const start = runtime.startText;
    // Asterisk's MEDIA_START carries none of the stream's parameters: they were on callrec's URL.
    if (fixture.meta.provider !== 'asterisk') expect(start).toContain(callId);
    expect(start).not.toContain(ts.key);
  });

  test('marks round-trip from the runtime to the provider and back', () => {
    const sentMarks = runtime.sent.map(readToProvider).flatMap((m) => (m.type === 'mark' ? [m.name] : []));
    expect(sentMarks.length > 0).toBe(hasMarks);
    expect(echoedMarks).toEqual(sentMarks);
    expect(runtime.received.map(playedMark).filter((name) => name !== null)).toEqual(echoedMarks);
  });

  test('the recording holds both legs, each agent reply where the caller heard it', async () => {
    const rec = await ts.recording(callId);
    expect(rec.status).toBe('ready');
    const res = await ts.api(`/api/calls/${callId}/recording`);
    const audio = await decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
    expect(audio.channels).toHaveLength(2);
    const callerBursts = findBursts(audio.channels[0], audio.sampleRate, 1000);
    expect(callerBursts.map((b) => b.startMs)).toEqual(
      fixture.meta.bursts.filter((b) => b.leg === 'caller').map((b) => expect.closeTo(b.startMs, 0)),
    );
    const agentBursts = findBursts(audio.channels[1], audio.sampleRate, 1500);
    expect(agentBursts).toHaveLength(callerBursts.length);
    const toneSentAt = toneStartOffsets(fixture);
    expect(toneSentAt).toHaveLength(callerBursts.length);
    agentBursts.forEach((reply, i) => {
      // The runtime answers the first 20 ms frame holding the tone; callrec places the reply at
      // the caller stream's clock when it arrived: the end of that frame, or one frame later
      // (60 ms allowed). On a loaded machine the reply may take longer to come back, and the
      // stream goes on meanwhile; it can still be placed no later than the caller audio sent
      // by the time the reply reached the provider (the fixtures' audio runs up to 40 ms from
      // their send offsets, and a frame more for the one being sent).
      const replyBackMs = result.received[i * messagesPerReply].atMs - toneSentAt[i];
      const heard = reply.startMs - callerBursts[i].startMs;
      expect(heard).toBeGreaterThan(0);
      expect(heard).toBeLessThanOrEqual(Math.max(60, replyBackMs + 60));
      // At a wire rate apart (L16 24/48 kHz) the runtime's own adapter resamples its reply and keeps
      // its filter's last 2 ms (a runtime sends no flush): within 3 ms there, exact elsewhere.
      if (fixture.meta.wireRate === undefined) expect(reply.endMs - reply.startMs).toBeCloseTo(REPLY_MS, 0);
      else expect(Math.abs(reply.endMs - reply.startMs - REPLY_MS)).toBeLessThanOrEqual(3);
    });
    // Nothing of the caller on the agent channel and the reverse.
    expect(findBursts(audio.channels[1], audio.sampleRate, 1000)).toEqual([]);
    expect(findBursts(audio.channels[0], audio.sampleRate, 1500)).toEqual([]);
    const call = (await (await ts.api(`/api/calls/${callId}`)).json()) as Record<string, unknown>;
    expect(call).toMatchObject({ mode: 'bridge', legs: ['caller', 'agent'], recording_status: 'ready' });
    expect(call.alignment).toMatchObject({ framesDropped: 0, agentAudioUnplayedMs: 0 });
  });
});

describe('a stream parameter forces the mode', () => {
  let fixture: Fixture;
  let runtime: ToneAnsweringRuntime;
  beforeAll(async () => {
    fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/telnyx-fork-pcma.jsonl'));
    runtime = await ToneAnsweringRuntime.start({ provider: 'telnyx', format: formatOf(fixture), replyMs: REPLY_MS });
    await ts.agent('mode-bridged', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      dual_channel: true,
      format: 'wav',
      agent_ws_url: runtime.url,
    });
    await ts.agent('mode-plain', { enabled: true, auto_record: true, consent_prompt: false });
  });
  afterAll(() => runtime?.close());

  test('mode=fork: a Telnyx stream is only recorded, both tracks from Telnyx, though the agent names a runtime', async () => {
    const callId = uniqueCallId('mode-fork');
    const result = await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/telnyx?mode=fork`,
      agentId: 'mode-bridged',
      token: ts.key,
      callId,
      speed: 'max',
    });
    expect(result.closeCode).toBe(1000);
    expect(result.received).toEqual([]);
    expect(runtime.received).toEqual([]);
    const rec = await ts.recording(callId);
    expect(rec.status).toBe('ready');
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    // The provider's own agent track this time: its 1500 Hz burst at 1000 ms.
    expect(findBursts(audio.channels[1], audio.sampleRate, 1500).map((b) => b.startMs)).toEqual([
      expect.closeTo(1000, 0),
    ]);
    expect(await (await ts.api(`/api/calls/${callId}`)).json()).toMatchObject({ mode: 'fork' });
  });

  test('mode=bridge with no runtime named: closed with a clear reason, nothing recorded', async () => {
    const callId = uniqueCallId('mode-bridge');
    const result = await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/telnyx?mode=bridge`,
      agentId: 'mode-plain',
      token: ts.key,
      callId,
      speed: 'max',
    });
    expect(result.closeCode).toBe(1008);
    expect(result.closeReason).toMatch(/^ERR_NO_RUNTIME: /);
    expect((await ts.api(`/api/calls/${callId}`)).status).toBe(404);
  });
});
