/**
 * What Plivo, Exotel, Bandwidth and SignalWire do their own way, beyond the contract suite's
 * shared rows (`contract.test.ts`).
 */
import { adapters } from '../../src/protocols/index.js';
import type { Provider, ProviderAdapter, ProviderEvent } from '../../src/protocols/types.js';
import { code } from './kits.js';

const json = (message: unknown) => Buffer.from(JSON.stringify(message));
const fresh = (provider: Provider, query: Record<string, string> = {}) => adapters[provider]({ headers: {}, query });
const startOf = (adapter: ProviderAdapter, message: unknown) =>
  (adapter.parseProviderMessage(json(message), false) as Extract<ProviderEvent, { type: 'start' }>).start;

/** `frames` 20 ms frames of L16 LE at 24 kHz: silence, then a 1 kHz tone from `onsetMs` (zero phase). */
function tone24k(frames: number, onsetMs: number): Buffer[] {
  const pcm = Buffer.alloc(frames * 960);
  const onset = (onsetMs * 24000) / 1000;
  for (let n = onset; n < frames * 480; n++)
    pcm.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 1000 * (n - onset)) / 24000)), 2 * n);
  return Array.from({ length: frames }, (_, i) => pcm.subarray(i * 960, (i + 1) * 960));
}

/**
 * A 24 kHz stream read through `adapter` (its `media(leg, n, payload)` message for the nth frame),
 * flushed at the end: each leg's audio laid out by its frames' timestamps at 16 kHz, and where
 * its tone starts, ms (the first sample above a quarter of the tone's amplitude).
 */
function record24k(adapter: ProviderAdapter, media: (n: number, payload: Buffer) => unknown, onsetMs: number) {
  const out = new Int16Array(16 * 600);
  let samples = 0;
  // Each payload is the adapter's scratch memory, valid until the next read: laid out at once.
  const lay = (event: ProviderEvent) => {
    const { timestampMs, payload } = event as Extract<ProviderEvent, { type: 'media' }>;
    const at = Math.round(timestampMs * 16);
    for (let i = 0; i < payload.length / 2; i++) out[at + i] = payload.readInt16LE(2 * i);
    samples += payload.length / 2;
  };
  for (const [n, frame] of tone24k(30, onsetMs).entries())
    lay(adapter.parseProviderMessage(json(media(n, frame)), false));
  for (const event of adapter.flush!()) lay(event);
  return { samples, onsetMs: out.findIndex((s) => Math.abs(s) > 3000) / 16 };
}

describe('plivo', () => {
  const start = (
    extra: Record<string, unknown> = {},
    mediaFormat = { encoding: 'audio/x-l16', sampleRate: 16000 },
    tracks = ['inbound'],
  ) => ({
    event: 'start',
    sequenceNumber: 1,
    start: { callId: 'call-uuid', streamId: 'stream-1', accountId: 'MA1', tracks, mediaFormat },
    ...extra,
  });

  test('extraHeaders as written in the XML (comma) or as the start shows them (semicolon); L16 little-endian', () => {
    const adapter = fresh('plivo');
    const s = startOf(adapter, start({ extra_headers: 'agent_id=a1,region=eu' }));
    expect(s).toMatchObject({
      providerCallId: 'call-uuid',
      streamId: 'stream-1',
      params: { agent_id: 'a1', region: 'eu' },
      legs: ['caller'],
      format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
    });
    // Inbound alone may be bidirectional: the session's rule decides; both tracks never are.
    expect(s.canSendAudio).toBeUndefined();
    expect(
      startOf(fresh('plivo'), start({}, { encoding: 'audio/x-mulaw', sampleRate: 8000 }, ['inbound', 'outbound']))
        .canSendAudio,
    ).toBe(false);
  });

  test('the runtime start keeps every extraHeaders pair but the token, in its own separator', () => {
    const out = fresh('plivo').runtimeStartMessage(
      json(start({ extra_headers: 'agent_id=a1,token=secret,region=eu' })),
      false,
    );
    expect(JSON.parse(out.data as string).extra_headers).toBe('agent_id=a1,region=eu');
  });

  test("what callrec and a runtime send: playAudio in the stream's format, checkpoint, clearAudio; sendDTMF passed on", () => {
    const adapter = fresh('plivo');
    startOf(adapter, start());
    expect(JSON.parse(adapter.mediaMessage(Buffer.alloc(640)).data as string)).toEqual({
      event: 'playAudio',
      streamId: 'stream-1',
      media: { contentType: 'audio/x-l16', sampleRate: 16000, payload: Buffer.alloc(640).toString('base64') },
    });
    expect(JSON.parse(adapter.markMessage('m1')!.data as string)).toEqual({
      event: 'checkpoint',
      streamId: 'stream-1',
      name: 'm1',
    });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ event: 'clearAudio', streamId: 'stream-1' });
    expect(adapter.parseRuntimeMessage(json({ event: 'sendDTMF', dtmf: '12' }), false)).toEqual({ type: 'other' });
    // Plivo would play μ-law into this L16 stream, but the recording would hold it as L16.
    const mulaw = { event: 'playAudio', media: { contentType: 'audio/x-mulaw', sampleRate: 8000, payload: 'AAAA' } };
    expect(code(() => adapter.parseRuntimeMessage(json(mulaw), false))).toBe('ERR_UNSUPPORTED_CODEC');
    // Twilio's `media` is not Plivo's: not taken for audio by the fast path either.
    expect(code(() => adapter.parseRuntimeMessage(json({ event: 'media', media: { payload: 'AAAA' } }), false))).toBe(
      'ERR_UNKNOWN_EVENT',
    );
    expect(adapter.parseProviderMessage(json({ event: 'clearedAudio', streamId: 'stream-1' }), false)).toEqual({
      type: 'other',
    });
  });
});

describe('exotel', () => {
  const start = (mediaFormat: Record<string, unknown>) => ({
    event: 'start',
    sequence_number: 1,
    stream_sid: 'sid-1',
    start: {
      stream_sid: 'sid-1',
      call_sid: 'call-1',
      custom_parameters: { agent_id: 'a1' },
      media_format: mediaFormat,
    },
  });

  test('raw/slin at the rate Exotel names, as a string or a number, under either encoding name; its μ-law option; 44.1 kHz refused naming the rate', () => {
    expect(
      startOf(fresh('exotel'), start({ encoding: 'base64', sample_rate: '16000', bit_rate: '256kbps' })),
    ).toMatchObject({
      providerCallId: 'call-1',
      streamId: 'sid-1',
      params: { agent_id: 'a1' },
      format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
    });
    expect(startOf(fresh('exotel'), start({ encoding: 'base64', sample_rate: 8000 })).format).toEqual({
      codec: 'l16',
      sampleRate: 8000,
      byteOrder: 'le',
    });
    expect(startOf(fresh('exotel'), start({ encoding: 'audio/x-raw', sample_rate: '16000' })).format).toEqual({
      codec: 'l16',
      sampleRate: 16000,
      byteOrder: 'le',
    });
    expect(startOf(fresh('exotel'), start({ encoding: 'audio/x-mulaw', sample_rate: '8000' })).format).toEqual({
      codec: 'pcmu',
      sampleRate: 8000,
    });
    const adapter = fresh('exotel');
    expect(() =>
      adapter.parseProviderMessage(json(start({ encoding: 'base64', sample_rate: '44100' })), false),
    ).toThrow('unsupported codec base64 at 44100 Hz');
    expect(code(() => adapter.parseProviderMessage(json(start({ encoding: 'base64' })), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
  });

  test('24 kHz (the HD rate) is recorded at 16 kHz: the tone where it was, every sample kept; audio back at 24 kHz', () => {
    const adapter = fresh('exotel');
    expect(startOf(adapter, start({ encoding: 'base64', sample_rate: '24000', bit_rate: '384kbps' })).format).toEqual({
      codec: 'l16',
      sampleRate: 16000,
      byteOrder: 'le',
    });
    const media = (n: number, payload: Buffer) => ({
      event: 'media',
      sequence_number: n + 2,
      stream_sid: 'sid-1',
      media: { chunk: n + 1, timestamp: String(n * 20), payload: payload.toString('base64') },
    });
    const recorded = record24k(adapter, media, 237);
    expect(Math.abs(recorded.onsetMs - 237)).toBeLessThanOrEqual(1);
    expect(recorded.samples).toBe(30 * 320);
    // callrec's prompt (16 kHz) goes out at the stream's rate; a runtime's reply (24 kHz) is recorded at 16.
    const sent = JSON.parse(adapter.mediaMessage(Buffer.alloc(6400)).data as string);
    const wire = Buffer.from(sent.media.payload, 'base64').length;
    expect(wire).toBeGreaterThan(6400);
    expect(wire).toBeLessThanOrEqual(9600);
    const reply = adapter.parseRuntimeMessage(json(media(0, tone24k(1, 0)[0])), false) as { payload: Buffer };
    expect(reply.payload.length).toBeLessThanOrEqual(640);
    // The mark ends the reply: the resampler's look-ahead comes with it, so the reply is whole.
    const mark = adapter.parseRuntimeMessage(json({ event: 'mark', stream_sid: 'sid-1', mark: { name: 'r' } }), false);
    expect(reply.payload.length + (mark as { payload: Buffer }).payload.length).toBe(640);
  });

  test('every message back names the stream by its stream_sid', () => {
    const adapter = fresh('exotel');
    startOf(adapter, start({ encoding: 'base64', sample_rate: '8000' }));
    expect(JSON.parse(adapter.mediaMessage(Buffer.alloc(320)).data as string)).toEqual({
      event: 'media',
      stream_sid: 'sid-1',
      media: { payload: Buffer.alloc(320).toString('base64') },
    });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ event: 'clear', stream_sid: 'sid-1' });
  });
});

describe('bandwidth', () => {
  const tracks = (...formats: Array<[string, string, number]>) =>
    formats.map(([name, encoding, sampleRate]) => ({ name, mediaFormat: { encoding, sampleRate } }));
  const start = (t: unknown) => ({
    eventType: 'start',
    callId: 'c-top',
    metadata: { callId: 'c-1', streamId: 's-1', tracks: t },
    streamParams: { agent_id: 'a1' },
  });

  test('PCM is L16 little-endian; tracks in different formats, an unknown track or codec are refused', () => {
    expect(startOf(fresh('bandwidth'), start(tracks(['inbound', 'audio/PCM', 8000])))).toMatchObject({
      providerCallId: 'c-1',
      streamId: 's-1',
      params: { agent_id: 'a1' },
      legs: ['caller'],
      format: { codec: 'l16', sampleRate: 8000, byteOrder: 'le' },
    });
    expect(
      code(() =>
        fresh('bandwidth').parseProviderMessage(
          json(start(tracks(['inbound', 'audio/PCMU', 8000], ['outbound', 'audio/PCM', 8000]))),
          false,
        ),
      ),
    ).toBe('ERR_MALFORMED_MESSAGE');
    expect(
      code(() => fresh('bandwidth').parseProviderMessage(json(start(tracks(['sideways', 'audio/PCMU', 8000]))), false)),
    ).toBe('ERR_MALFORMED_MESSAGE');
    expect(() =>
      fresh('bandwidth').parseProviderMessage(json(start(tracks(['inbound', 'audio/PCM', 48000]))), false),
    ).toThrow('unsupported codec audio/PCM at 48000 Hz');
  });

  test('PCM at 24 kHz is recorded at 16 kHz, each track placed by its own samples; playAudio says 24 kHz', () => {
    const adapter = fresh('bandwidth');
    expect(
      startOf(adapter, start(tracks(['inbound', 'audio/PCM', 24000], ['outbound', 'audio/PCM', 24000]))).format,
    ).toEqual({ codec: 'l16', sampleRate: 16000, byteOrder: 'le' });
    const media = (n: number, payload: Buffer) => ({
      eventType: 'media',
      track: 'outbound',
      sequenceNumber: n + 1,
      payload: payload.toString('base64'),
    });
    const recorded = record24k(adapter, media, 413);
    expect(Math.abs(recorded.onsetMs - 413)).toBeLessThanOrEqual(1);
    expect(recorded.samples).toBe(30 * 320);
    const sent = JSON.parse(adapter.mediaMessage(Buffer.alloc(640)).data as string);
    expect(sent.media.contentType).toBe('audio/pcm;rate=24000;channels=1;bit-depth=16;endian=little;encoding=signed');
    const reply = adapter.parseRuntimeMessage(
      json({ eventType: 'playAudio', media: { contentType: sent.media.contentType, payload: sent.media.payload } }),
      false,
    ) as { type: string; payload: Buffer };
    expect(reply.type).toBe('media');
    expect(reply.payload.length % 2).toBe(0);
  });

  test('each track is placed by the samples it sent before, whatever the other track sent', () => {
    const adapter = fresh('bandwidth');
    startOf(adapter, start(tracks(['inbound', 'audio/PCMU', 8000], ['outbound', 'audio/PCMU', 8000])));
    const media = (track: string, bytes: number) =>
      adapter.parseProviderMessage(
        json({ eventType: 'media', track, sequenceNumber: 1, payload: Buffer.alloc(bytes).toString('base64') }),
        false,
      ) as { leg: string; timestampMs: number };
    expect(
      [media('inbound', 160), media('inbound', 800), media('outbound', 160), media('inbound', 160)].map((e) => [
        e.leg,
        e.timestampMs,
      ]),
    ).toEqual([
      ['caller', 0],
      ['caller', 20],
      ['agent', 0],
      ['caller', 120],
    ]);
  });

  test("a runtime plays PCM at any rate Bandwidth takes into a PCM stream, recorded at the stream's; never another codec", () => {
    const adapter = fresh('bandwidth');
    startOf(adapter, start(tracks(['inbound', 'audio/PCM', 8000])));
    const sent = JSON.parse(adapter.mediaMessage(Buffer.alloc(320)).data as string);
    expect(sent.media.contentType).toBe('audio/pcm;rate=8000;channels=1;bit-depth=16;endian=little;encoding=signed');
    expect(adapter.parseRuntimeMessage(json(sent), false)).toMatchObject({ type: 'media' });
    // pipecat's default: 24 kHz PCM whatever the stream's rate; Bandwidth resamples it, and so does callrec.
    const pcm24k = 'audio/pcm;rate=24000;channels=1;bit-depth=16;endian=little;encoding=signed';
    const reply = adapter.parseRuntimeMessage(
      json({ eventType: 'playAudio', media: { contentType: pcm24k, payload: Buffer.alloc(9600).toString('base64') } }),
      false,
    ) as { type: string; payload: Buffer };
    expect(reply.type).toBe('media');
    // 200 ms at 24 kHz is 200 ms at 8 kHz, less the resampler's look-ahead.
    expect(reply.payload.length).toBeLessThanOrEqual(3200);
    expect(reply.payload.length).toBeGreaterThan(3000);
    expect(
      code(() =>
        adapter.parseRuntimeMessage(
          json({ eventType: 'playAudio', media: { contentType: pcm24k.replace('24000', '44100'), payload: 'AAAA' } }),
          false,
        ),
      ),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(
      code(() =>
        adapter.parseRuntimeMessage(
          json({ eventType: 'playAudio', media: { contentType: 'audio/pcmu', payload: 'AAAA' } }),
          false,
        ),
      ),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(adapter.markMessage('m')).toBeNull();
  });
});

test("signalwire speaks Twilio's protocol under its own name", () => {
  const adapter = fresh('signalwire');
  expect(adapter.provider).toBe('signalwire');
  const s = startOf(adapter, {
    event: 'start',
    start: {
      streamSid: 'MZ1',
      callSid: 'CA1',
      tracks: ['inbound'],
      customParameters: { agent_id: 'a1' },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  });
  expect(s).toMatchObject({ providerCallId: 'CA1', streamId: 'MZ1', params: { agent_id: 'a1' }, canSendAudio: true });
  expect(JSON.parse(adapter.markMessage('m')!.data as string)).toEqual({
    event: 'mark',
    streamSid: 'MZ1',
    mark: { name: 'm' },
  });
});
