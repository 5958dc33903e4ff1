import { createHash } from 'node:crypto';
import path from 'node:path';
import { decoderFor } from '../../media/codec.js';
import { readEvidenceZip } from '../../src/evidence/package.js';
import { verifyRecording } from '../../src/evidence/verify.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { ProviderPlayback } from '../../src/replay/playback.js';
import { decodeAudio, findBursts } from '../helpers/audio.js';
import { formatOf, markEcho, readToProvider, ToneAnsweringRuntime } from '../helpers/bridge.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const FIXTURES = path.join(import.meta.dirname, '../../fixtures');
const MESSAGE = 'This call is recorded for quality and training purposes.';

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.close());

/** What callrec sent us: prompt audio (wire-encoded) and the name of the mark after it. */
interface Sent {
  audio: Buffer[];
  mark: string | null;
}

/** The caller pressing `digit`, in the fixture's provider's protocol. */
function dtmfOf(fixture: Fixture, digit: string): string {
  return new ProviderPlayback(fixture).dtmf(digit)!;
}

/** One 20 ms caller frame of silence at `timestampMs`. */
function twilioFrameAt(fixture: Fixture, timestampMs: number): string {
  const start = JSON.parse(fixture.messages[1].data as string);
  const payload = Buffer.alloc(160, 0xff).toString('base64');
  return JSON.stringify({
    event: 'media',
    streamSid: start.streamSid,
    sequenceNumber: '902',
    media: { track: 'inbound', chunk: '902', timestamp: String(timestampMs), payload },
  });
}

interface ConsentCall {
  fixture: Fixture;
  agentId: string;
  /** Stream time at which the provider confirms the prompt played (echoes the mark); never if absent. */
  echoAtMs?: number;
  dtmf?: { digit: string; atMs: number };
  /** Hang up at this stream time (the fixture is cut there). */
  hangUpAtMs?: number;
  query?: string;
  /** Right after the prompt's mark arrives, send one caller frame stamped this far in the future (ms). */
  jumpToMs?: number;
  /** The server streamed to (default: the file's). */
  server?: TestServer;
}

/** Streams a fixture in real time, acting as the provider: plays nothing, but confirms marks and presses digits when told. */
async function consentCall(opts: ConsentCall): Promise<{ callId: string; sent: Sent }> {
  const { fixture, server = ts } = opts;
  const callId = uniqueCallId(`consent-${fixture.meta.provider}`);
  const sent: Sent = { audio: [], mark: null };
  const messages =
    opts.hangUpAtMs === undefined ? fixture.messages : fixture.messages.filter((m) => m.t < opts.hangUpAtMs!);
  // The provider's replies due at a stream time go out in the stream, before its frame of that
  // time: a wall-clock timer would land among other frames when the sender runs late.
  const due: { atMs: number; data: string }[] = [];
  const at = (atMs: number, data: string) => {
    due.push({ atMs, data });
    due.sort((a, b) => a.atMs - b.atMs);
  };
  await replayFixture(
    { ...fixture, messages },
    {
      url: `${server.wsUrl}/media/${fixture.meta.provider}${opts.query ?? ''}`,
      agentId: opts.agentId,
      token: server.key,
      callId,
      speed: 'realtime',
      closeAfterMs: 100,
      onMessage(data, binary, reply) {
        const hadMark = sent.mark !== null;
        const said = readToProvider({ data, binary });
        if (said.type === 'audio') sent.audio.push(Buffer.from(said.payload));
        else if (said.type === 'mark') sent.mark = said.name;
        if (hadMark || sent.mark === null) return;
        if (opts.jumpToMs !== undefined) reply(twilioFrameAt(fixture, opts.jumpToMs), false);
        if (opts.echoAtMs !== undefined) at(opts.echoAtMs, markEcho(fixture, sent.mark!));
        if (opts.dtmf) at(opts.dtmf.atMs, dtmfOf(fixture, opts.dtmf.digit));
      },
      onStreamTime(streamMs, send) {
        while (due.length > 0 && due[0].atMs <= streamMs) send(due.shift()!.data, false);
      },
    },
  );
  return { callId, sent };
}

/** The call as the API shows it once the session has finished with it. */
async function callView(callId: string, server = ts): Promise<Record<string, any>> {
  for (let tries = 0; ; tries++) {
    const view = (await (await server.api(`/api/calls/${callId}`)).json()) as Record<string, any>;
    if (view.status === 'ended' || tries > 100) return view;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The decoded recording of a call. */
async function recordingOf(callId: string, server = ts) {
  const rec = await server.recording(callId);
  expect(rec.status).toBe('ready');
  const res = await server.api(`/api/calls/${callId}/recording`);
  return decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
}

describe.each([
  // provider fixture, when the provider confirms the prompt, query string
  ['twilio-connect-caller', 1700, ''],
  ['telnyx-fork-tones', 2000, '?bidirectional=true'],
  ['vonage-tones', 1000, ''],
  ['plivo-bidirectional-caller', 1700, ''],
  ['exotel-voicebot-caller', 1700, ''],
  // Between two tones: a 24 kHz stream is resampled with a short filter delay, so a tone ending
  // right where capture starts would leave its tail in the recording.
  ['jambonz-mono-24k', 1200, ''],
  ['asterisk-slin48', 1000, ''],
] as const)('one-party consent on %s', (name, echoAtMs, query) => {
  let fixture: Fixture;
  let call: { callId: string; sent: Sent };
  beforeAll(async () => {
    fixture = await readFixture(path.join(FIXTURES, `${name}.jsonl`));
    const agentId = `consent-${name}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: true,
      consent_message: MESSAGE,
      dual_channel: true,
      format: 'wav',
    });
    call = await consentCall({ fixture, agentId, echoAtMs, query });
  }, 30_000);

  test("the prompt sent back is speech of plausible length in the stream's codec, then a mark", () => {
    expect(call.sent.mark).toMatch(/^callrec-consent/);
    const format = formatOf(fixture);
    const wire = Buffer.concat(call.sent.audio);
    const pcm = new Int16Array(wire.length);
    const n = decoderFor(format)(wire, pcm);
    const seconds = n / format.sampleRate;
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(8);
    let energy = 0;
    for (let i = 0; i < n; i++) energy += pcm[i] * pcm[i];
    expect(Math.sqrt(energy / n)).toBeGreaterThan(300);
    // Speech, not a tone: its level comes and goes (syllables and pauses).
    const frame = format.sampleRate / 50;
    const levels: number[] = [];
    for (let i = 0; i + frame <= n; i += frame) {
      let e = 0;
      for (let j = i; j < i + frame; j++) e += Math.abs(pcm[j]);
      levels.push(e / frame);
    }
    expect(levels.filter((l) => l < 50).length).toBeGreaterThan(3);
    expect(levels.filter((l) => l > 500).length).toBeGreaterThan(10);
    // Exotel plays pieces under 3.2 KB poorly: its prompt goes in 200 ms messages, others' in 20 ms.
    const pieceMs = fixture.meta.provider === 'exotel' ? 200 : 20;
    const pieceBytes = (wire.length / n) * format.sampleRate * (pieceMs / 1000);
    // Resampled to a wire rate (L16 24/48 kHz), the first piece is short by the resampler's delay.
    const whole = fixture.meta.wireRate === undefined ? call.sent.audio.slice(0, -1) : call.sent.audio.slice(1, -1);
    expect(whole.every((piece) => piece.length === pieceBytes)).toBe(true);
  });

  test('what the caller said before the mark came back is not recorded; what came after is', async () => {
    const audio = await recordingOf(call.callId);
    const durationMs = (audio.channels[0].length * 1000) / audio.sampleRate;
    // Capture starts where the stream clock stood when the mark came back (within a frame or two).
    const startMs = fixture.meta.durationMs - durationMs;
    expect(Math.abs(startMs - echoAtMs)).toBeLessThanOrEqual(60);
    for (const leg of ['caller', 'agent'] as const) {
      const expected = fixture.meta.bursts.filter((b) => b.leg === leg && b.startMs > echoAtMs);
      const found = findBursts(
        audio.channels[leg === 'caller' ? 0 : 1],
        audio.sampleRate,
        leg === 'caller' ? 1000 : 1500,
      );
      expect(found).toHaveLength(expected.length);
      expected.forEach((burst, i) => {
        expect(Math.abs(found[i].startMs + startMs - burst.startMs)).toBeLessThanOrEqual(1);
      });
    }
  });

  test('the consent record says what was announced, how and when', async () => {
    const view = await callView(call.callId);
    expect(view.consent).toMatchObject({
      mode: 'one_party',
      outcome: 'announced',
      message: MESSAGE,
      message_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      engine: 'flite',
      digit: null,
    });
    // Sent as soon as it was synthesized (the first synthesis also compiles Flite's WASM).
    expect(view.consent.prompt_started_ms).toBeLessThan(1000);
    expect(Math.abs(view.consent.prompt_ended_ms - echoAtMs)).toBeLessThanOrEqual(60);
  });

  test('the manifest names the prompt as played, and the evidence package carries it', async () => {
    const played = Buffer.concat(call.sent.audio);
    const signed = (await callView(call.callId)).consent.prompt_audio_sha256;
    // The hash is of the prompt in the stream's format; a wire rate apart (L16 24/48 kHz) resamples it on the way out.
    if (fixture.meta.wireRate === undefined) expect(signed).toBe(createHash('sha256').update(played).digest('hex'));
    // The manifest is signed just after the recording is marked ready.
    let evidence = await ts.api(`/api/calls/${call.callId}/evidence`);
    while (evidence.status === 404) evidence = await ts.api(`/api/calls/${call.callId}/evidence`);
    const pkg = readEvidenceZip(new Uint8Array(await evidence.arrayBuffer()));
    expect(createHash('sha256').update(pkg.prompt!.audio).digest('hex')).toBe(signed);
    if (fixture.meta.wireRate === undefined) expect(Buffer.from(pkg.prompt!.audio)).toEqual(played);
    const report = await verifyRecording({
      audio: pkg.audio,
      manifest: pkg.manifest,
      keySet: pkg.keys,
      prompt: pkg.prompt!.audio,
    });
    expect(report.checks.find((c) => c.check === 'consent prompt')).toMatchObject({ ok: true });
  });
});

describe('two-party consent', () => {
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await readFixture(path.join(FIXTURES, 'twilio-connect-caller.jsonl'));
    await ts.agent('two-party', {
      enabled: true,
      auto_record: true,
      consent_mode: 'two_party',
      consent_digit: '1',
      consent_timeout_seconds: 1,
      format: 'wav',
    });
  });

  test.concurrent.each([
    ['1', 'agreed', true],
    ['2', 'declined', false],
  ] as const)(
    'digit %s → %s',
    async (digit, outcome, recorded) => {
      const { callId } = await consentCall({
        fixture,
        agentId: 'two-party',
        echoAtMs: 400,
        dtmf: { digit, atMs: 700 },
      });
      const view = await callView(callId);
      expect(view.consent).toMatchObject({ mode: 'two_party', outcome, digit });
      expect(view.recording_status).toEqual(recorded ? expect.stringMatching(/processing|ready/) : 'none');
      if (recorded) {
        const audio = await recordingOf(callId);
        // Recorded from the digit on: all three bursts (the first starts at 1000 ms).
        expect(findBursts(audio.channels[0], audio.sampleRate, 1000)).toHaveLength(3);
      }
    },
    30_000,
  );

  test.concurrent('no digit → timeout, nothing recorded', async () => {
    const { callId } = await consentCall({ fixture, agentId: 'two-party', echoAtMs: 400 });
    const view = await callView(callId);
    expect(view.consent).toMatchObject({ outcome: 'timeout', digit: null, reason: expect.stringContaining('1 s') });
    expect(view.recording_status).toBe('none');
  }, 30_000);

  test.concurrent('hang-up during the prompt → failed, nothing recorded', async () => {
    const { callId, sent } = await consentCall({ fixture, agentId: 'two-party', hangUpAtMs: 600 });
    expect(sent.mark).not.toBeNull();
    const view = await callView(callId);
    expect(view.consent).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining('before the prompt finished'),
    });
    expect(view.recording_status).toBe('none');
  }, 30_000);
});

// A client that sends one frame stamped an hour ahead must not move the call's clock an hour:
// consent is timed on it (prompt start and end, where capture begins).
describe('a timestamp jump during two-party consent', () => {
  const LEAD_S = 1;
  let bounded: TestServer;
  beforeAll(async () => {
    bounded = await startTestServer({ env: { STREAM_AUDIO_LEAD_SECONDS: String(LEAD_S) } });
    await bounded.agent('two-party', {
      enabled: true,
      auto_record: true,
      consent_mode: 'two_party',
      consent_digit: '1',
      consent_timeout_seconds: 1,
      format: 'wav',
    });
  });
  afterAll(() => bounded?.close());

  test('moves the clock at most the lead; the digit window and the recording after it hold', async () => {
    const fixture = await readFixture(path.join(FIXTURES, 'twilio-connect-caller.jsonl'));
    const { callId } = await consentCall({
      fixture,
      agentId: 'two-party',
      echoAtMs: 400,
      dtmf: { digit: '1', atMs: 700 },
      jumpToMs: 3_600_000,
      server: bounded,
    });
    const view = await callView(callId, bounded);
    // The digit 300 ms after the prompt, inside its 1 s window, still counts.
    expect(view.consent).toMatchObject({ mode: 'two_party', outcome: 'agreed', digit: '1' });
    // The prompt ended (on the call's clock) where the wall clock allows, not an hour in.
    expect(view.consent.prompt_ended_ms).toBeLessThanOrEqual(400 + LEAD_S * 1000 + 200);
    // Capture began at most the lead late: the bursts after it are recorded (before the fix: none).
    const audio = await recordingOf(callId, bounded);
    const bursts = findBursts(audio.channels[0], audio.sampleRate, 1000);
    expect(bursts.length).toBeGreaterThanOrEqual(
      fixture.meta.bursts.filter((b) => b.startMs > 700 + LEAD_S * 1000 + 200).length,
    );
    expect(bursts.length).toBeGreaterThanOrEqual(2);
  }, 30_000);
});

test('a one-way stream cannot carry the prompt: fail closed, nothing recorded', async () => {
  const fixture = await readFixture(path.join(FIXTURES, 'twilio-fork-tones.jsonl'));
  await ts.agent('one-way', { enabled: true, auto_record: true, consent_prompt: true });
  const callId = uniqueCallId('one-way');
  const result = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: 'one-way',
    token: ts.key,
    callId,
    speed: 'max',
  });
  expect(result.closeCode).toBe(1000); // the call itself is never cut off
  expect(result.received).toEqual([]);
  const view = await callView(callId);
  expect(view.consent).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('one-way') });
  expect(view.recording_status).toBe('none');
});

test('a Bandwidth stream confirms no playback: the prompt cannot be known to have played, fail closed', async () => {
  const fixture = await readFixture(path.join(FIXTURES, 'bandwidth-bidirectional-caller.jsonl'));
  await ts.agent('bandwidth-consent', { enabled: true, auto_record: true, consent_prompt: true });
  const callId = uniqueCallId('bandwidth-consent');
  // In real time: the prompt is synthesized and sent well before the stream ends.
  const result = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/bandwidth`,
    agentId: 'bandwidth-consent',
    token: ts.key,
    callId,
    speed: 'realtime',
  });
  expect(result.closeCode).toBe(1000);
  expect(result.received.length).toBeGreaterThan(0);
  const view = await callView(callId);
  expect(view.consent).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('cannot confirm playback') });
  expect(view.recording_status).toBe('none');
}, 15_000);

// The runtime greets the moment its stream starts, while callrec is still synthesizing a prompt
// nobody asked for before (a cold cache). The caller must hear the whole prompt first, then the
// whole greeting, in order; two-party, only once the caller has answered. The same on every
// platform a runtime can be bridged to that confirms playback.
describe.each([
  ['one_party', 'announced', 'twilio-connect-caller'],
  ['two_party', 'agreed', 'twilio-connect-caller'],
  ['two_party', 'agreed', 'plivo-bidirectional-caller'],
  ['two_party', 'agreed', 'exotel-voicebot-caller'],
] as const)('bridge with a cold prompt cache, %s, %s', (consentMode, outcome, name) => {
  const GREETING_MS = 600;
  let fixture: Fixture;
  let runtime: ToneAnsweringRuntime;
  let callId: string;
  const received: Array<{ data: Buffer; binary: boolean; at: number }> = [];
  let releasedAt = Infinity;

  beforeAll(async () => {
    fixture = await readFixture(path.join(FIXTURES, `${name}.jsonl`));
    const { provider } = fixture.meta;
    runtime = await ToneAnsweringRuntime.start({
      provider,
      format: formatOf(fixture),
      replyMs: 300,
      greetingMs: GREETING_MS,
    });
    const agentId = `cold-${consentMode}-${provider}`;
    callId = uniqueCallId(agentId);
    // A text no call has rendered yet: its synthesis runs while the runtime greets.
    const message = `This call is recorded. Reference ${callId}.`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: true,
      consent_message: message,
      consent_mode: consentMode,
      consent_digit: '1',
      agent_ws_url: runtime.url,
      dual_channel: true,
      format: 'wav',
    });
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/${provider}`,
      agentId,
      token: ts.key,
      callId,
      speed: 'realtime',
      closeAfterMs: 100,
      onMessage(data, binary, reply) {
        received.push({ data, binary, at: performance.now() });
        const said = readToProvider({ data, binary });
        if (said.type !== 'mark' || !said.name.startsWith('callrec-consent')) return;
        // The prompt "plays" for a while, then the caller answers if asked to.
        setTimeout(() => {
          if (consentMode === 'one_party') releasedAt = performance.now();
          reply(markEcho(fixture, said.name), false);
          if (consentMode === 'two_party') {
            setTimeout(() => {
              releasedAt = performance.now();
              reply(dtmfOf(fixture, '1'), false);
            }, 300);
          }
        }, 200);
      },
    });
  }, 30_000);

  afterAll(() => runtime?.close());

  test('the runtime greeted while the prompt was still being synthesized', () => {
    const firstPrompt = received.find((m) => readToProvider(m).type === 'audio')!;
    expect(runtime.greetedAt).not.toBeNull();
    expect(runtime.greetedAt!).toBeLessThan(firstPrompt.at);
  });

  test('the caller hears the whole prompt, then the whole greeting, in order', () => {
    const said = received.map(readToProvider);
    const promptMark = said.findIndex((m) => m.type === 'mark' && m.name.startsWith('callrec-consent'));
    expect(promptMark).toBeGreaterThan(10);
    expect(said.slice(0, promptMark).every((m) => m.type === 'audio')).toBe(true);
    const greeting = runtime.sent.slice(0, GREETING_MS / 20 + 1);
    expect(readToProvider(greeting.at(-1)!)).toEqual({ type: 'mark', name: 'greeting' });
    const after = received.slice(promptMark + 1, promptMark + 1 + greeting.length);
    expect(after.map((m) => m.data.toString())).toEqual(greeting.map((m) => m.data.toString()));
    // Nothing of the runtime's reached the caller before the prompt played (and, two-party, was answered).
    expect(after[0].at).toBeGreaterThanOrEqual(releasedAt);
  });

  test('the consent record says the caller was asked, and how it ended', async () => {
    const view = await callView(callId);
    expect(view).toMatchObject({ mode: 'bridge', consent: { mode: consentMode, outcome } });
  });

  test('the recording starts with the whole greeting on the agent leg, where the caller heard it', async () => {
    const audio = await recordingOf(callId);
    const greetings = findBursts(audio.channels[1], audio.sampleRate, 2000);
    expect(greetings).toHaveLength(1);
    // Released the moment capture began: at the recording's start, within a frame or two.
    expect(greetings[0].startMs).toBeLessThanOrEqual(60);
    expect(greetings[0].endMs - greetings[0].startMs).toBeCloseTo(GREETING_MS, 0);
  });
});
