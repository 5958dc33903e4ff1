import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { decoderFor } from '../../media/codec.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import { adapters, AUDIOHOOK_KEY_HEADER } from '../../src/protocols/index.js';
import type { ProviderEvent } from '../../src/protocols/types.js';
import { readFixture } from '../../src/replay/fixture.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.jsonl'));
/** Captures whose wire rate is above the recording's: their frames are resampled, so placed to the ms, not the sample (test/e2e/providers). */
const RESAMPLED = new Set([
  'asterisk-slin48.jsonl',
  'azure-unmixed-24k.jsonl',
  'bandwidth-fork-pcm24k.jsonl',
  'exotel-voicebot-24k.jsonl',
  'jambonz-mono-24k.jsonl',
]);
/** Platforms whose parameters ride on the URL (the replay client puts them there), not in the start. */
const PARAMS_IN_URL = new Set(['asterisk', 'azure']);

/** Runs a capture through its provider adapter: what callrec would see. */
async function parse(file: string) {
  const fixture = await readFixture(path.join(FIXTURES, file));
  // AudioHook's key is a header of the upgrade, which the replay client sets; the capture holds messages only.
  const headers = fixture.meta.provider === 'genesys' ? { [AUDIOHOOK_KEY_HEADER]: 'fixture-token' } : {};
  const adapter = adapters[fixture.meta.provider]({ headers, query: {} });
  const events: ProviderEvent[] = [];
  const frames: Array<{ leg: Leg; atMs: number; pcm: Int16Array }> = [];
  let format: MediaFormat | undefined;
  for (const m of fixture.messages) {
    const event = adapter.parseProviderMessage(Buffer.from(m.data as string | Buffer), m.binary);
    if (event.type === 'start') format = event.start.format;
    const add = (leg: Leg, atMs: number, payload: Buffer) => {
      const pcm = new Int16Array(payload.length);
      const n = decoderFor(format!)(payload, pcm);
      frames.push({ leg, atMs, pcm: pcm.subarray(0, n) });
    };
    if (event.type === 'media') add(event.leg, event.timestampMs, event.payload);
    if (event.type === 'stereo') {
      add('caller', event.timestampMs, event.caller);
      add('agent', event.timestampMs, event.agent);
    }
    events.push(event);
  }
  return { fixture, events, frames, format: format! };
}

test('every capture is present and under 1 MB of JSON lines', () => {
  expect(files.sort()).toEqual([
    'asterisk-slin48.jsonl',
    'azure-unmixed-24k.jsonl',
    'bandwidth-bidirectional-caller.jsonl',
    'bandwidth-fork-pcm24k.jsonl',
    'bandwidth-fork-tones.jsonl',
    'exotel-voicebot-24k.jsonl',
    'exotel-voicebot-caller.jsonl',
    'freeswitch-mono.jsonl',
    'genesys-audiohook-tones.jsonl',
    'jambonz-mono-24k.jsonl',
    'jambonz-stereo.jsonl',
    'plivo-bidirectional-caller.jsonl',
    'plivo-fork-tones.jsonl',
    'signalwire-fork-tones.jsonl',
    'telnyx-fork-pcma.jsonl',
    'telnyx-fork-tones.jsonl',
    'twilio-connect-caller.jsonl',
    'twilio-fork-tones.jsonl',
    'twilio-speech.jsonl',
    'vonage-tones.jsonl',
  ]);
  for (const file of files) expect([file, statSync(path.join(FIXTURES, file)).size < 1_000_000]).toEqual([file, true]);
});

describe.each(files)('%s', (file) => {
  test('parses cleanly; send offsets never go back; placeholders in the start', async () => {
    const { fixture, events } = await parse(file);
    const start = events.find((e) => e.type === 'start');
    expect(start).toBeDefined();
    const params = (start as Extract<ProviderEvent, { type: 'start' }>).start.params;
    if (PARAMS_IN_URL.has(fixture.meta.provider)) expect(params.token).toBeUndefined();
    else expect(params).toMatchObject({ agent_id: 'fixture-agent', token: 'fixture-token' });
    expect((start as Extract<ProviderEvent, { type: 'start' }>).start.params.call_id).toBeUndefined();
    for (let i = 1; i < fixture.messages.length; i++)
      expect(fixture.messages[i].t).toBeGreaterThanOrEqual(fixture.messages[i - 1].t);
    expect(events.filter((e) => e.type === 'dtmf').map((e) => (e as { digit: string }).digit)).toEqual(
      fixture.meta.dtmf.map((d) => d.digit),
    );
  });
});

describe.each(files.filter((f) => !RESAMPLED.has(f)))('%s, sample-exact', (file) => {
  test('frames: lost ones missing, duplicates twice, reordering as recorded, the rest once', async () => {
    const { fixture, frames } = await parse(file);
    const { meta } = fixture;
    const key = (leg: Leg, atMs: number) => `${leg}@${atMs}`;
    const count = new Map<string, number>();
    for (const f of frames) count.set(key(f.leg, f.atMs), (count.get(key(f.leg, f.atMs)) ?? 0) + 1);
    const lost = new Set(meta.impairments.lost.map((r) => key(r.leg, r.atMs)));
    const dup = new Set(meta.impairments.duplicated.map((r) => key(r.leg, r.atMs)));
    for (const leg of meta.legs) {
      for (let atMs = 0; atMs < meta.durationMs; atMs += 20) {
        const k = key(leg, atMs);
        expect([k, count.get(k) ?? 0]).toEqual([k, lost.has(k) ? 0 : dup.has(k) ? 2 : 1]);
      }
    }
    const late = frames.filter((f, i) => frames.slice(0, i).some((g) => g.leg === f.leg && g.atMs > f.atMs));
    expect(late.length > 0).toBe(meta.impairments.swapped.length + meta.impairments.delayed.length > 0);
  });

  test('bursts start at their exact sample, with digital silence before', async () => {
    const { fixture, frames, format } = await parse(file);
    const perMs = format.sampleRate / 1000;
    const legPcm = (leg: Leg) => {
      const pcm = new Int16Array(fixture.meta.durationMs * perMs);
      for (const f of frames) if (f.leg === leg) pcm.set(f.pcm, f.atMs * perMs);
      return pcm;
    };
    // G.711 A-law has no zero code: its silence decodes to ±8.
    const silence = format.codec === 'pcma' ? 8 : 0;
    for (const burst of fixture.meta.bursts) {
      const pcm = legPcm(burst.leg);
      const start = Math.round(burst.startMs * perMs);
      expect(Math.max(...Array.from(pcm.subarray(start - 40, start + 1), Math.abs))).toBeLessThanOrEqual(silence);
      // sin() rises from zero phase: the first sample after the onset is already well above silence.
      expect(pcm[start + 1]).toBeGreaterThan(1000);
    }
  });
});
