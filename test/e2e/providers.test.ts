import { createHash } from 'node:crypto';
import path from 'node:path';
import type { RecordingFormat } from '../../media/types.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { decodeAudio, findBursts, type DecodedAudio } from '../helpers/audio.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const FIXTURES = path.join(import.meta.dirname, '../../fixtures');
const CHANNEL = { caller: 0, agent: 1 } as const;
const FREQ = { caller: 1000, agent: 1500 } as const;

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.close());

/** Streams a fixture through the provider endpoint and returns the decoded recording. */
async function record(
  fixture: Fixture,
  agent: { format: RecordingFormat; dual_channel: boolean },
): Promise<DecodedAudio> {
  return (await recordRaw(fixture, agent)).audio;
}

/** The recording as stored (opaque) and as served (decrypted), with its row. */
async function recordRaw(fixture: Fixture, agent: { format: RecordingFormat; dual_channel: boolean }) {
  const agentId = `agent-${fixture.meta.provider}-${agent.format}-${agent.dual_channel ? 'stereo' : 'mono'}`;
  await ts.agent(agentId, { enabled: true, auto_record: true, consent_prompt: false, ...agent });
  const callId = uniqueCallId(fixture.meta.provider);
  const result = await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/${fixture.meta.provider}`,
    agentId,
    token: ts.key,
    callId,
    speed: 'max',
  });
  expect([1000, 1005]).toContain(result.closeCode);
  const rec = await ts.recording(callId);
  expect(rec).toMatchObject({ status: 'ready', format: agent.format, channels: agent.dual_channel ? 2 : 1 });
  const res = await ts.api(`/api/calls/${callId}/recording`);
  expect(res.status).toBe(200);
  const served = Buffer.from(await res.arrayBuffer());
  const stored = Buffer.concat(await (await ts.server.storage.default.get(rec.objectKey!)).toArray());
  return { rec, served, stored, audio: await decodeAudio(new Uint8Array(served), agent.format) };
}

const durationMs = (audio: DecodedAudio) => (audio.channels[0].length * 1000) / audio.sampleRate;

describe.each([
  'twilio-fork-tones',
  'telnyx-fork-tones',
  'telnyx-fork-pcma',
  'vonage-tones',
  'signalwire-fork-tones',
  'plivo-fork-tones',
  'exotel-voicebot-caller',
  'exotel-voicebot-24k',
  'bandwidth-fork-tones',
  'bandwidth-fork-pcm24k',
  'jambonz-stereo',
  'freeswitch-mono',
  'asterisk-slin48',
  'azure-unmixed-24k',
  'genesys-audiohook-tones',
])('%s', (name) => {
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await readFixture(path.join(FIXTURES, `${name}.jsonl`));
  });

  test('stereo WAV: every burst on its own channel, onset within 1 ms, duration within 20 ms', async () => {
    const { rec, served, stored, audio } = await recordRaw(fixture, { format: 'wav', dual_channel: true });
    // Stored encrypted: no WAV header, none of the audio's bytes; served decrypted, matching its checksum.
    expect(rec.objectKey).toMatch(/\.wav\.enc$/);
    expect(stored.subarray(0, 4).toString('latin1')).toBe('CREC');
    expect(stored.includes(Buffer.from('RIFF'))).toBe(false);
    expect(stored.includes(served.subarray(1000, 1032))).toBe(false);
    expect(createHash('sha256').update(served).digest('hex')).toBe(rec.sha256);
    expect(served.length).toBe(rec.byteSize);
    expect(audio.channels).toHaveLength(2);
    expect(audio.sampleRate).toBe(fixture.meta.sampleRate);
    expect(Math.abs(durationMs(audio) - fixture.meta.durationMs)).toBeLessThanOrEqual(20);
    for (const leg of ['caller', 'agent'] as const) {
      const expected = fixture.meta.bursts.filter((b) => b.leg === leg);
      const found = findBursts(audio.channels[CHANNEL[leg]], audio.sampleRate, FREQ[leg]);
      expect(found).toHaveLength(expected.length);
      expected.forEach((burst, i) => {
        expect(Math.abs(found[i].startMs - burst.startMs)).toBeLessThanOrEqual(1);
        expect(Math.abs(found[i].endMs - (burst.startMs + burst.durationMs))).toBeLessThanOrEqual(1);
      });
      // Nothing of this leg leaked onto the other channel.
      const other = leg === 'caller' ? 'agent' : 'caller';
      expect(findBursts(audio.channels[CHANNEL[other]], audio.sampleRate, FREQ[leg])).toEqual([]);
    }
  });

  test('mono mix holds both legs without clipping', async () => {
    const audio = await record(fixture, { format: 'wav', dual_channel: false });
    expect(audio.channels).toHaveLength(1);
    const [mono] = audio.channels;
    for (const leg of ['caller', 'agent'] as const) {
      const expected = fixture.meta.bursts.filter((b) => b.leg === leg);
      const found = findBursts(mono, audio.sampleRate, FREQ[leg]);
      expect(found.map((b) => Math.round(b.startMs))).toEqual(expected.map((b) => Math.round(b.startMs)));
    }
    let peak = 0;
    for (const s of mono) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeGreaterThan(0.3);
    expect(peak).toBeLessThan(32767 / 32768);
  });
});

describe('another format than the stored one (?format=)', () => {
  test.each(['mp3', 'ogg'] as const)('a WAV recording served as %s: decodes to the call, and seeks', async (format) => {
    const fixture = await readFixture(path.join(FIXTURES, 'twilio-fork-tones.jsonl'));
    const { rec } = await recordRaw(fixture, { format: 'wav', dual_channel: true });
    const res = await ts.api(`/api/calls/${rec.callId}/recording?format=${format}&download=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(format === 'mp3' ? 'audio/mpeg' : 'audio/ogg');
    expect(res.headers.get('content-disposition')).toContain(`.${format}"`);
    const whole = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(whole.length);
    const audio = await decodeAudio(new Uint8Array(whole), format);
    expect(findBursts(audio.channels[0], audio.sampleRate, 1000, { minAmplitude: 0.1 })).toHaveLength(
      fixture.meta.bursts.filter((b) => b.leg === 'caller').length,
    );
    const ranged = await ts.api(`/api/calls/${rec.callId}/recording?format=${format}`, {
      headers: { range: 'bytes=100-199' },
    });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(whole.subarray(100, 200));
    const log = await ts.server.store.accessLog.list(ts.tenantId, rec.callId);
    expect(log.map((entry) => entry.format)).toEqual(expect.arrayContaining([format]));
  });
});

describe('compressed formats', () => {
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await readFixture(path.join(FIXTURES, 'twilio-fork-tones.jsonl'));
  });

  test.each(['mp3', 'ogg'] as const)("%s decodes to the call: its length and both legs' bursts", async (format) => {
    const audio = await record(fixture, { format, dual_channel: true });
    expect(audio.channels).toHaveLength(2);
    // Both say what to trim: Ogg/Opus its pre-skip and end, MP3 (LAME tag) the encoder delay and padding.
    const extra = durationMs(audio) - fixture.meta.durationMs;
    expect(extra).toBeGreaterThanOrEqual(-20);
    expect(extra).toBeLessThanOrEqual(20);
    for (const leg of ['caller', 'agent'] as const) {
      const expected = fixture.meta.bursts.filter((b) => b.leg === leg);
      const found = findBursts(audio.channels[CHANNEL[leg]], audio.sampleRate, FREQ[leg], { minAmplitude: 0.1 });
      expect(found).toHaveLength(expected.length);
      // Low-bitrate voice codecs smear a tone's attack by a few ms; the WAV tests hold timing to 1 ms.
      expected.forEach((burst, i) => {
        expect(Math.abs(found[i].startMs - burst.startMs)).toBeLessThanOrEqual(5);
      });
    }
  });
});
