import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTtsEngine, FileTtsEngine, FliteEngine, GoogleTtsEngine } from '../../src/consent/tts/index.js';
import { amplitudeAt, floatTone, soundStats, wav } from './helpers.js';

const MESSAGE = 'This call is being recorded for quality and training purposes.';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('flite', () => {
  test.each([
    ['kal', 8000],
    ['slt', 16000],
  ])('voice %s speaks the default message at %i Hz, 1.5–6 s of sound, leaving no temp files', async (voice, rate) => {
    // A temp root of this test's own: other processes (and test files) speak in the shared one.
    const temp = await mkdtemp(path.join(tmpdir(), 'callrec-flite-test-'));
    const shared = process.env.TMPDIR;
    process.env.TMPDIR = temp;
    let spoken;
    try {
      spoken = await new FliteEngine(voice).synthesize(MESSAGE);
    } finally {
      if (shared === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = shared;
    }
    expect(await readdir(temp)).toEqual([]);
    await rm(temp, { recursive: true });
    const { pcm, sampleRate } = spoken;
    expect(sampleRate).toBe(rate);
    const { loudWindows, soundMs, peak } = soundStats(pcm, sampleRate);
    expect(soundMs).toBeGreaterThanOrEqual(1500);
    expect(soundMs).toBeLessThanOrEqual(6000);
    expect(loudWindows).toBeGreaterThan(soundMs / 20 / 2); // mostly sound, not a click at each end
    expect(peak).toBeGreaterThan(3000);
  });

  test('longer text takes longer to say', async () => {
    const engine = new FliteEngine();
    const short = await engine.synthesize('Hello.');
    const long = await engine.synthesize(`${MESSAGE} ${MESSAGE}`);
    expect(long.pcm.length).toBeGreaterThan(short.pcm.length * 3);
  });

  test('an unknown voice is a configuration error', () => {
    expect(() => new FliteEngine('hal9000')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});

describe('flite pool', () => {
  /** OS threads of this process now (Linux): a worker thread is one more. */
  const threads = () => readdirSync('/proc/self/task').length;

  test("60 concurrent distinct prompts run on the pool's 2 worker threads: threads and memory bounded by the pool, not by the prompts", async () => {
    const engine = new FliteEngine('kal', { workers: 2, maxQueued: 100, maxWaitMs: 600_000 });
    await engine.synthesize('Warm up.');
    const base = { threads: threads(), rss: process.memoryUsage.rss() };
    const peak = { threads: base.threads, rss: base.rss, pool: 0 };
    const sample = setInterval(() => {
      peak.threads = Math.max(peak.threads, threads());
      peak.rss = Math.max(peak.rss, process.memoryUsage.rss());
      peak.pool = Math.max(peak.pool, engine.pool.threads);
    }, 5);
    try {
      const spoken = await Promise.all(
        Array.from({ length: 60 }, (_, i) => engine.synthesize(`Prompt ${i}: this call is recorded.`)),
      );
      expect(spoken.every(({ pcm }) => pcm.length > 8000)).toBe(true);
    } finally {
      clearInterval(sample);
      await engine.close();
    }
    expect(peak.pool).toBe(2);
    // A fresh worker per synthesis made 60 threads here; libuv's 4 file-system threads may start too.
    expect(peak.threads - base.threads).toBeLessThanOrEqual(2 + 4);
    // Each worker holds a Flite WASM instance (~43 MB) and its heap (+81 MB measured for the two): 60 workers took +2.5 GB.
    expect(peak.rss - base.rss).toBeLessThan(256 * 1024 * 1024);
  }, 300_000);

  test('the queue is bounded in size and in wait: past either a synthesis is refused ERR_TTS_BUSY, naming the variable', async () => {
    const engine = new FliteEngine('kal', { workers: 1, maxQueued: 1, maxWaitMs: 1 });
    try {
      const results = await Promise.allSettled([0, 1, 2].map((i) => engine.synthesize(`Busy ${i}.`)));
      // Whichever reaches the pool first is spoken; of the others one finds the queue full, one waits too long.
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(
        results
          .filter((r) => r.status === 'rejected')
          .map((r) => (r as PromiseRejectedResult).reason)
          .sort((a, b) => a.message.localeCompare(b.message)),
      ).toEqual([
        expect.objectContaining({
          code: 'ERR_TTS_BUSY',
          message: expect.stringMatching(/^1 syntheses already wait for a Flite worker \(FLITE_QUEUE_MAX\)/),
        }),
        expect.objectContaining({
          code: 'ERR_TTS_BUSY',
          message: expect.stringMatching(/^no Flite worker was free within 0.001 s \(FLITE_QUEUE_WAIT_SECONDS\)/),
        }),
      ]);
    } finally {
      await engine.close();
    }
  });
});

describe('file:<dir>', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'callrec-prompts-'));
    // The message's own prompt: stereo 16-bit at 22.05 kHz; the fallback: mono float at 24 kHz.
    const left = floatTone(440, 0.5, 2, 22050);
    await writeFile(
      path.join(dir, `${sha256(MESSAGE)}.wav`),
      wav.encode([left, left], { sampleRate: 22050, bitDepth: 16 }),
    );
    await writeFile(
      path.join(dir, 'default.wav'),
      wav.encode([floatTone(1000, 0.25, 1, 24000)], { sampleRate: 24000, float: true }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('reads <sha256 of the text>.wav, mixing stereo to mono', async () => {
    const { pcm, sampleRate } = await new FileTtsEngine(dir).synthesize(MESSAGE);
    expect(sampleRate).toBe(22050);
    expect(pcm.length).toBe(44100);
    expect(amplitudeAt(pcm, 440, 22050)).toBeCloseTo(0.5, 2);
  });

  test('falls back to default.wav for any other text', async () => {
    const { pcm, sampleRate } = await new FileTtsEngine(dir).synthesize('Some other message.');
    expect(sampleRate).toBe(24000);
    expect(amplitudeAt(pcm, 1000, 24000)).toBeCloseTo(0.25, 2);
  });

  test('no prompt at all is ERR_TTS naming both paths', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'callrec-prompts-'));
    try {
      const err = await new FileTtsEngine(empty).synthesize(MESSAGE).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TTS' });
      expect((err as Error).message).toContain(path.join(empty, `${sha256(MESSAGE)}.wav`));
      expect((err as Error).message).toContain(path.join(empty, 'default.wav'));
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test('a file that is not a WAV is ERR_TTS', async () => {
    const bad = await mkdtemp(path.join(tmpdir(), 'callrec-prompts-'));
    try {
      await writeFile(path.join(bad, 'default.wav'), 'not a wav file at all');
      await expect(new FileTtsEngine(bad).synthesize(MESSAGE)).rejects.toMatchObject({ code: 'ERR_TTS' });
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});

describe('google', () => {
  /** Stands in for texttospeech.googleapis.com's REST endpoint: answers with a 700 Hz tone WAV at the requested rate. */
  let server: http.Server;
  let requests: Array<{ url: string; apiKey: string | undefined; body: any }>;
  let reply: ((body: any) => { status: number; json: unknown }) | undefined;
  let engine: GoogleTtsEngine;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        requests.push({ url: req.url!, apiKey: req.headers['x-goog-api-key'] as string | undefined, body });
        const rate = body.audioConfig.sampleRateHertz;
        const { status, json } = reply?.(body) ?? {
          status: 200,
          json: {
            audioContent: wav
              .encode([floatTone(700, 0.5, 1.5, rate)], { sampleRate: rate, bitDepth: 16 })
              .toString('base64'),
          },
        };
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // The real client over its HTTP/1.1 JSON transport, pointed here; an API key needs no token exchange.
    engine = new GoogleTtsEngine({
      voice: 'en-GB-Standard-A',
      client: { fallback: true, apiEndpoint: '127.0.0.1', port, protocol: 'http', apiKey: 'test-key' },
    });
  });
  beforeEach(() => {
    requests = [];
    reply = undefined;
  });
  afterAll(async () => {
    await engine.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test.each([8000, 16000] as const)(
    'asks for LINEAR16 at %i Hz with the voice and its language, and strips the WAV header',
    async (rate) => {
      const { pcm, sampleRate } = await engine.synthesize(MESSAGE, rate);
      expect(requests).toHaveLength(1);
      expect(requests[0].url.startsWith('/v1/text:synthesize')).toBe(true);
      expect(requests[0].apiKey).toBe('test-key');
      expect(requests[0].body).toEqual({
        input: { text: MESSAGE },
        voice: { languageCode: 'en-GB', name: 'en-GB-Standard-A' },
        audioConfig: { audioEncoding: 1 /* LINEAR16, as the REST transport sends enums */, sampleRateHertz: rate },
      });
      expect(sampleRate).toBe(rate);
      expect(pcm.length).toBe(1.5 * rate); // the 44-byte header is not read as samples
      expect(amplitudeAt(pcm, 700, rate)).toBeCloseTo(0.5, 2);
    },
  );

  test('an API error is ERR_TTS with the service message', async () => {
    reply = () => ({
      status: 400,
      json: { error: { code: 400, message: 'Voice en-GB-Standard-A does not exist.', status: 'INVALID_ARGUMENT' } },
    });
    const err = await engine.synthesize(MESSAGE, 8000).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TTS' });
    expect((err as Error).message).toContain('does not exist');
  });

  test('audio that is not a WAV is ERR_TTS', async () => {
    reply = () => ({ status: 200, json: { audioContent: Buffer.from('ID3 not a wav').toString('base64') } });
    await expect(engine.synthesize(MESSAGE, 8000)).rejects.toMatchObject({ code: 'ERR_TTS' });
  });
});

describe('createTtsEngine', () => {
  test('builds the engine TTS_ENGINE names, with its settings from the environment', async () => {
    expect(createTtsEngine('flite', {})).toMatchObject({ name: 'flite', voice: 'slt' });
    expect(createTtsEngine('flite', { FLITE_VOICE: 'kal' })).toMatchObject({ name: 'flite', voice: 'kal' });
    expect(createTtsEngine('file:/srv/prompts', {})).toMatchObject({ name: 'file', dir: '/srv/prompts' });
    const google = createTtsEngine('google', { GOOGLE_TTS_VOICE: 'de-DE-Wavenet-B' });
    expect(google).toMatchObject({ name: 'google', voice: 'de-DE-Wavenet-B' });
    await (google as GoogleTtsEngine).close();
  });

  test('anything else is a configuration error', () => {
    for (const spec of ['espeak', 'file:', '']) {
      expect(() => createTtsEngine(spec, {})).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    }
    expect(() => createTtsEngine('google', { GOOGLE_TTS_VOICE: 'nonsense' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG' }),
    );
  });
});
