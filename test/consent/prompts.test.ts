import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decoderFor } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import { PromptCache } from '../../src/consent/prompts.js';
import { FileTtsEngine, FliteEngine } from '../../src/consent/tts/index.js';
import { amplitudeAt, CountingEngine, floatTone, snrDb, soundStats, wav } from './helpers.js';

const MESSAGE = 'This call is being recorded for quality and training purposes.';

function decode(payload: Buffer, format: MediaFormat): Int16Array {
  const pcm = new Int16Array(format.codec === 'l16' ? payload.length / 2 : payload.length);
  decoderFor(format)(payload, pcm);
  return pcm;
}

describe('PromptCache with flite', () => {
  const engine = new CountingEngine(new FliteEngine());
  const cache = new PromptCache(engine);

  test.each([8000, 16000] as const)(
    'renders speech at %i Hz in whole 20 ms frames ending in silence',
    async (sampleRate) => {
      const format: MediaFormat = { codec: 'l16', sampleRate, byteOrder: 'le' };
      const prompt = await cache.render(MESSAGE, format);
      const pcm = decode(prompt.payload, format);
      expect(prompt.durationMs).toBe((pcm.length * 1000) / sampleRate);
      expect(pcm.length % (sampleRate / 50)).toBe(0);
      const { soundMs } = soundStats(pcm, sampleRate);
      expect(soundMs).toBeGreaterThanOrEqual(1500);
      expect(soundMs).toBeLessThanOrEqual(6000);
      // At most 100 ms before the first sound; at least 100 ms of digital silence after the last.
      expect(pcm.findIndex((sample) => Math.abs(sample) > 64)).toBeLessThanOrEqual(sampleRate / 10);
      expect(Math.max(...pcm.subarray(pcm.length - sampleRate / 10).map(Math.abs))).toBe(0);
      expect(prompt).toMatchObject({
        engine: 'flite',
        voice: 'slt',
        synthesized: true,
        textSha256: createHash('sha256').update(MESSAGE).digest('hex'),
      });
    },
  );

  test.each([
    { codec: 'pcmu', sampleRate: 8000 },
    { codec: 'pcma', sampleRate: 8000 },
    { codec: 'l16', sampleRate: 16000, byteOrder: 'be' },
  ] as MediaFormat[])('renders $codec ($byteOrder) that decodes back to the same speech', async (format) => {
    const reference = decode(
      (await cache.render(MESSAGE, { codec: 'l16', sampleRate: format.sampleRate, byteOrder: 'le' })).payload,
      {
        codec: 'l16',
        sampleRate: format.sampleRate,
        byteOrder: 'le',
      },
    );
    const prompt = await cache.render(MESSAGE, format);
    const pcm = decode(prompt.payload, format);
    expect(pcm.length).toBe(reference.length);
    // G.711 keeps ~35 dB SNR on speech; a byte-order or codec mix-up gives about 0 dB or less.
    expect(snrDb(reference, pcm)).toBeGreaterThan(format.codec === 'l16' ? 90 : 25);
  });

  test('the second render of a prompt is served from the cache', async () => {
    const format: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
    const first = await cache.render('Second render test.', format);
    const calls = engine.calls;
    const second = await cache.render('Second render test.', format);
    expect(first.synthesized).toBe(true);
    expect(second.synthesized).toBe(false);
    expect(engine.calls).toBe(calls);
    expect(second.payload).toBe(first.payload);
  });

  test('concurrent renders of one prompt share one synthesis', async () => {
    const counting = new CountingEngine(new FliteEngine());
    const fresh = new PromptCache(counting);
    const format: MediaFormat = { codec: 'pcma', sampleRate: 8000 };
    const prompts = await Promise.all(Array.from({ length: 5 }, () => fresh.render(MESSAGE, format)));
    expect(counting.calls).toBe(1);
    expect(prompts.filter((p) => p.synthesized)).toHaveLength(1);
    for (const p of prompts) expect(p.payload).toBe(prompts[0].payload);
  });
});

describe('PromptCache with prerecorded prompts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'callrec-prompts-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const writeDefault = (freqHz: number, sampleRate = 22050): Promise<void> =>
    writeFile(
      path.join(dir, 'default.wav'),
      wav.encode([floatTone(freqHz, 0.5, 2, sampleRate)], { sampleRate, bitDepth: 16 }),
    );

  test('resamples the recording to the stream rate', async () => {
    await writeDefault(440);
    const format: MediaFormat = { codec: 'l16', sampleRate: 8000 };
    const prompt = await new PromptCache(new FileTtsEngine(dir)).render(MESSAGE, format);
    const pcm = decode(prompt.payload, format);
    expect(prompt.durationMs).toBe(2100); // 2 s of tone + 100 ms padding
    expect(amplitudeAt(pcm.subarray(800, 15200), 440, 8000)).toBeCloseTo(0.5, 2);
  });

  test('trims long silences to 100 ms and pads the end with 100 ms more', async () => {
    const rate = 16000;
    const recording = new Float32Array(3 * rate);
    recording.set(floatTone(500, 0.5, 1, rate), rate); // 1 s silence, 1 s tone, 1 s silence
    await writeFile(path.join(dir, 'default.wav'), wav.encode([recording], { sampleRate: rate, bitDepth: 16 }));
    const format: MediaFormat = { codec: 'l16', sampleRate: 16000 };
    const prompt = await new PromptCache(new FileTtsEngine(dir)).render(MESSAGE, format);
    // 100 ms lead + 1 s + 100 ms kept tail + 100 ms pad, to whole 20 ms frames.
    expect(prompt.durationMs).toBe(1300);
    const pcm = decode(prompt.payload, format);
    expect(pcm.findIndex((sample) => sample !== 0)).toBe(rate / 10); // the first sound, 100 ms in
  });

  test('a failed synthesis is not cached', async () => {
    const engine = new CountingEngine(new FileTtsEngine(dir));
    const cache = new PromptCache(engine);
    const format: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
    await expect(cache.render(MESSAGE, format)).rejects.toMatchObject({ code: 'ERR_TTS' });
    await writeDefault(440);
    await expect(cache.render(MESSAGE, format)).resolves.toMatchObject({ synthesized: true });
    expect(engine.calls).toBe(2);
  });

  test('a silent recording is rejected rather than played', async () => {
    await writeFile(path.join(dir, 'default.wav'), wav.encode([new Float32Array(8000)], { sampleRate: 8000 }));
    await expect(
      new PromptCache(new FileTtsEngine(dir)).render(MESSAGE, { codec: 'pcmu', sampleRate: 8000 }),
    ).rejects.toMatchObject({
      code: 'ERR_TTS',
    });
  });

  test('a tenant may have at most maxTextsPerTenantPerHour distinct texts synthesized: past it ERR_PROMPT_LIMIT; other tenants, repeats and failures spend nothing', async () => {
    const engine = new CountingEngine(new FileTtsEngine(dir));
    const cache = new PromptCache(engine, { maxEntries: 1, maxTextsPerTenantPerHour: 2 });
    const format: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
    // No prompt yet: a failed synthesis gives its text back.
    await expect(cache.render('zero', format, 'acme')).rejects.toMatchObject({ code: 'ERR_TTS' });
    await writeDefault(440);
    await cache.render('one', format, 'acme');
    await cache.render('two', format, 'acme');
    // Evicted from the one-entry cache and synthesized again, or in another format: the same text, not a new one.
    await expect(cache.render('one', format, 'acme')).resolves.toMatchObject({ synthesized: true });
    await expect(cache.render('two', { codec: 'pcma', sampleRate: 8000 }, 'acme')).resolves.toMatchObject({
      synthesized: true,
    });
    await expect(cache.render('three', format, 'acme')).rejects.toMatchObject({
      code: 'ERR_PROMPT_LIMIT',
      message: expect.stringMatching(
        /^the tenant had 2 distinct consent prompts synthesized this hour \(CONSENT_PROMPTS_PER_TENANT_PER_HOUR\); a new one may be in 60 min$/,
      ),
    });
    await expect(cache.render('three', format, 'globex')).resolves.toMatchObject({ synthesized: true });
    expect(engine.calls).toBe(6);
  });

  test('keeps at most maxEntries prompts, evicting the least recently used', async () => {
    await writeDefault(440);
    const engine = new CountingEngine(new FileTtsEngine(dir));
    const cache = new PromptCache(engine, { maxEntries: 2 });
    const format: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
    const render = async (text: string): Promise<boolean> => (await cache.render(text, format)).synthesized;
    expect(await render('a')).toBe(true);
    expect(await render('b')).toBe(true);
    expect(await render('a')).toBe(false); // a is now the most recent
    expect(await render('c')).toBe(true); // evicts b
    expect(await render('a')).toBe(false);
    expect(await render('b')).toBe(true);
    expect(engine.calls).toBe(4);
  });

  test('each wire format is its own entry', async () => {
    await writeDefault(440);
    const engine = new CountingEngine(new FileTtsEngine(dir));
    const cache = new PromptCache(engine);
    await cache.render(MESSAGE, { codec: 'l16', sampleRate: 8000, byteOrder: 'le' });
    expect((await cache.render(MESSAGE, { codec: 'l16', sampleRate: 8000 })).synthesized).toBe(false); // LE is the default
    expect((await cache.render(MESSAGE, { codec: 'l16', sampleRate: 8000, byteOrder: 'be' })).synthesized).toBe(true);
    expect((await cache.render(MESSAGE, { codec: 'l16', sampleRate: 16000, byteOrder: 'be' })).synthesized).toBe(true);
    expect((await cache.render(MESSAGE, { codec: 'pcmu', sampleRate: 8000 })).synthesized).toBe(true);
    expect(engine.calls).toBe(4);
  });
});
