import path from 'node:path';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { decodeAudio, type DecodedAudio } from '../helpers/audio.js';
import {
  startServerProcess,
  startTestServer,
  uniqueCallId,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

/** Node A holds the provider sockets; every control request goes through node B, a second process. */
let nodeA: TestServer;
let nodeB: ServerProcess;
let fixture: Fixture;

beforeAll(async () => {
  nodeA = await startTestServer();
  nodeB = await startServerProcess(nodeA);
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  const base = { enabled: true, auto_record: false, consent_prompt: false, dual_channel: true, format: 'wav' } as const;
  await nodeA.agent('controlled-silence', { ...base, pause_behavior: 'silence' });
  await nodeA.agent('controlled-skip', { ...base, pause_behavior: 'skip' });
});

afterAll(async () => {
  await nodeB?.close();
  await nodeA?.close();
});

function control(callId: string, action: string): Promise<Response> {
  return nodeB.api(`/api/calls/${callId}/recording`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action }),
  });
}

interface Controlled {
  callId: string;
  statuses: Record<string, number>;
  audio: DecodedAudio;
  view: Record<string, any>;
}

/** Streams the 6 s fixture in real time to node A and drives its recording from node B. */
async function controlledCall(agentId: string): Promise<Controlled> {
  const callId = uniqueCallId(agentId);
  const statuses: Record<string, number> = {};
  const step = (name: string, action: string, atMs: number) =>
    new Promise<void>((resolve) =>
      setTimeout(async () => {
        statuses[name] = (await control(callId, action)).status;
        resolve();
      }, atMs),
    );
  const replay = replayFixture(fixture, {
    url: `${nodeA.wsUrl}/media/twilio`,
    agentId,
    token: nodeA.key,
    callId,
    speed: 'realtime',
  });
  await Promise.all([
    replay,
    step('start', 'start', 800),
    step('start again', 'start', 1200),
    step('resume while recording', 'resume', 1400),
    step('pause', 'pause', 2000),
    step('pause again', 'pause', 2500),
    step('resume', 'resume', 3300),
    step('stop', 'stop', 4600),
    step('start after stop', 'start', 5000),
  ]);
  const rec = await nodeA.recording(callId);
  expect(rec.status).toBe('ready');
  const res = await nodeB.api(`/api/calls/${callId}/recording`);
  const audio = await decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
  const view = (await (await nodeB.api(`/api/calls/${callId}`)).json()) as Record<string, any>;
  return { callId, statuses, audio, view };
}

/**
 * The actions are timed by this process's wall clock while the call streams in real time, so
 * where they land in stream time moves with how busy the machine is (seen: 100+ ms under a full
 * test run). The tolerances allow for that; where the audio lies relative to each pause is
 * checked exactly, against the pause's own recorded figures.
 */
const SCHEDULING_MS = 250;

const ms = (audio: DecodedAudio, samples: number) => (samples * 1000) / audio.sampleRate;
const durationMs = (audio: DecodedAudio) => ms(audio, audio.channels[0].length);

/** Index of the first sample of `channel` that is not digital silence, from `fromMs`. */
function isSilent(audio: DecodedAudio, fromMs: number, toMs: number): boolean {
  const from = Math.round((fromMs * audio.sampleRate) / 1000);
  const to = Math.round((toMs * audio.sampleRate) / 1000);
  return audio.channels.every((ch) => ch.subarray(from, to).every((s) => s === 0));
}

describe('recording control through another node', () => {
  let silence: Controlled;
  let skip: Controlled;
  beforeAll(async () => {
    [silence, skip] = await Promise.all([controlledCall('controlled-silence'), controlledCall('controlled-skip')]);
  }, 30_000);

  test('each action answers as the transition allows', () => {
    for (const call of [silence, skip]) {
      expect(call.statuses).toEqual({
        start: 200,
        'start again': 409,
        'resume while recording': 409,
        pause: 200,
        'pause again': 409,
        resume: 200,
        stop: 200,
        'start after stop': 409,
      });
    }
  });

  test('pause_behavior silence: the pause is digital silence at its recorded place, and the duration is kept', () => {
    const { audio, view } = silence;
    expect(view.pauses).toHaveLength(1);
    const [pause] = view.pauses;
    expect(pause).toMatchObject({ behavior: 'silence' });
    const pausedFor = pause.resumed_at_ms - pause.paused_at_ms;
    expect(Math.abs(pausedFor - 1300)).toBeLessThanOrEqual(SCHEDULING_MS);
    // Recorded from start (≈ 800 ms) to stop (≈ 4600 ms), the pause included.
    expect(Math.abs(durationMs(audio) - 3800)).toBeLessThanOrEqual(SCHEDULING_MS);
    expect(isSilent(audio, pause.recording_offset_ms, pause.recording_offset_ms + pausedFor)).toBe(true);
    // The caller's 3000–3800 ms burst resumes with the recording: not silent right after the pause.
    expect(isSilent(audio, pause.recording_offset_ms + pausedFor, pause.recording_offset_ms + pausedFor + 200)).toBe(
      false,
    );
    expect(view.recording_status).toBe('ready');
  });

  test('pause_behavior skip: the pause is left out of the file', () => {
    const { audio, view } = skip;
    const [pause] = view.pauses;
    expect(pause).toMatchObject({ behavior: 'skip' });
    const pausedFor = pause.resumed_at_ms - pause.paused_at_ms;
    expect(Math.abs(durationMs(audio) - (3800 - pausedFor))).toBeLessThanOrEqual(SCHEDULING_MS);
    // Audio goes on across the cut: the caller's burst continues right at the pause's place.
    expect(isSilent(audio, pause.recording_offset_ms, pause.recording_offset_ms + 100)).toBe(false);
  });
});

test('control of an unknown call is a 404', async () => {
  expect((await control('no-such-call', 'start')).status).toBe(404);
});
