import { adapters } from '../../src/protocols/index.js';
import type { ProviderAdapter, ProviderEvent, UpgradeInfo } from '../../src/protocols/types.js';
import { code } from './kits.js';

const NO_UPGRADE: UpgradeInfo = { headers: {}, query: {} };
const text = (message: unknown) => Buffer.from(typeof message === 'string' ? message : JSON.stringify(message));
const provider = (adapter: ProviderAdapter, data: Buffer, binary: boolean) =>
  adapter.parseProviderMessage(data, binary);

/** `samples` of L16 LE, sample i = base + i. */
function ramp(samples: number, base: number): Buffer {
  const out = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) out.writeInt16LE(base + i, 2 * i);
  return out;
}

describe('jambonz', () => {
  test('stereo: each frame split into both legs, caller first, placed by the samples before it', () => {
    const adapter = adapters.jambonz(NO_UPGRADE);
    const start = provider(
      adapter,
      text({ callSid: 'c1', sampleRate: 8000, mixType: 'stereo', metadata: { agent_id: 'a' } }),
      false,
    ) as Extract<ProviderEvent, { type: 'start' }>;
    expect(start.start).toMatchObject({
      providerCallId: 'c1',
      legs: ['caller', 'agent'],
      format: { codec: 'l16', sampleRate: 8000, byteOrder: 'le' },
    });
    for (let n = 0; n < 3; n++) {
      const frame = Buffer.alloc(160 * 4);
      for (let i = 0; i < 160; i++) {
        frame.writeInt16LE(1000 + i, 4 * i);
        frame.writeInt16LE(-1000 - i, 4 * i + 2);
      }
      const event = provider(adapter, frame, true) as Extract<ProviderEvent, { type: 'stereo' }>;
      expect(event).toMatchObject({ type: 'stereo', timestampMs: n * 20 });
      expect(event.caller.equals(ramp(160, 1000))).toBe(true);
      expect(event.agent.readInt16LE(2)).toBe(-1001);
    }
    // Half a stereo sample frame is not audio.
    expect(code(() => provider(adapter, Buffer.alloc(6), true))).toBe('ERR_BAD_PAYLOAD');
  });

  test('48 kHz: recorded at 16 kHz, each frame placed where its resampled audio starts, back to back', () => {
    const adapter = adapters.jambonz(NO_UPGRADE);
    const start = provider(adapter, text({ callSid: 'c1', sampleRate: '48000', mixType: 'mono' }), false) as Extract<
      ProviderEvent,
      { type: 'start' }
    >;
    expect(start.start.format.sampleRate).toBe(16000);
    let nextMs = 0;
    for (let n = 0; n < 10; n++) {
      const event = provider(adapter, Buffer.alloc(960 * 2), true) as Extract<ProviderEvent, { type: 'media' }>;
      expect(event.timestampMs).toBeCloseTo(nextMs, 9);
      nextMs += (event.payload.length / 2 / 16000) * 1000;
    }
    expect(nextMs).toBeGreaterThan(195);
  });

  test('rates and mix types it cannot take are refused, naming them', () => {
    const refuse = (metadata: object) => {
      try {
        provider(adapters.jambonz(NO_UPGRADE), text(metadata), false);
      } catch (err) {
        return `${(err as { code: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(refuse({ sampleRate: 64000, mixType: 'mono' })).toBe(
      'ERR_UNSUPPORTED_CODEC: unsupported codec L16 at 64000 Hz',
    );
    expect(refuse({ sampleRate: 8000, mixType: 'quad' })).toMatch(/^ERR_MALFORMED_MESSAGE: mixType/);
  });

  test("a runtime's playAudio at another rate is recorded at the stream's; killAudio clears, a cleared mark is no mark", () => {
    const adapter = adapters.jambonz(NO_UPGRADE);
    provider(adapter, text({ callSid: 'c1', sampleRate: 16000, mixType: 'mono' }), false);
    const play = adapter.parseRuntimeMessage(
      text({
        type: 'playAudio',
        data: {
          audioContent: Buffer.alloc(160 * 2 * 10).toString('base64'),
          audioContentType: 'raw',
          sampleRate: 8000,
        },
      }),
      false,
    );
    expect(play.type).toBe('media');
    // 200 ms at 8 kHz, less the resampler's look-ahead, at 16 kHz.
    expect((play as { payload: Buffer }).payload.length / 2).toBeGreaterThan(3000);
    expect(
      adapter.parseRuntimeMessage(
        text({ type: 'playAudio', data: { audioContent: 'UklGRg==', audioContentType: 'wave' } }),
        false,
      ),
    ).toEqual({ type: 'other' });
    expect(adapter.parseRuntimeMessage(text({ type: 'killAudio' }), false)).toEqual({ type: 'clear' });
    expect(provider(adapter, text({ type: 'mark', data: { name: 'm1', event: 'cleared' } }), false)).toEqual({
      type: 'other',
    });
  });
});

describe('FreeSWITCH mod_audio_stream', () => {
  test('the rate and mix type from the URL when the metadata leaves them out; stereo splits', () => {
    const adapter = adapters.freeswitch({ headers: {}, query: { sample_rate: '16k', mix_type: 'stereo' } });
    const start = provider(adapter, text({ uuid: 'u1' }), false) as Extract<ProviderEvent, { type: 'start' }>;
    expect(start.start).toMatchObject({
      providerCallId: 'u1',
      legs: ['caller', 'agent'],
      format: { sampleRate: 16000 },
    });
    expect(provider(adapter, Buffer.alloc(640 * 2), true)).toMatchObject({ type: 'stereo', timestampMs: 0 });
    // The dialplan's own text later on (send_text) is relayed, not refused.
    expect(provider(adapter, text('hello from the dialplan'), false)).toEqual({ type: 'other' });
  });

  test('no rate anywhere: refused with a reason saying where to put it', () => {
    expect(code(() => provider(adapters.freeswitch(NO_UPGRADE), text({ uuid: 'u1' }), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
  });
});

describe('Asterisk chan_websocket', () => {
  const jsonStart = {
    event: 'MEDIA_START',
    connection_id: 'c1',
    channel: 'WebSocket/c1/0x1',
    channel_id: '1761245643.1',
    format: 'ulaw',
    optimal_frame_size: 160,
    ptime: 20,
    channel_variables: { CALLREC_AGENT: 'a1' },
  };

  test('JSON control messages: MEDIA_START with its channel variables, commands answered in JSON', () => {
    const adapter = adapters.asterisk(NO_UPGRADE);
    const start = provider(adapter, text(jsonStart), false) as Extract<ProviderEvent, { type: 'start' }>;
    expect(start.start).toMatchObject({
      providerCallId: '1761245643.1',
      format: { codec: 'pcmu', sampleRate: 8000 },
      canSendAudio: true,
      params: { CALLREC_AGENT: 'a1' },
    });
    expect(JSON.parse(adapter.markMessage('m1')!.data as string)).toEqual({
      command: 'MARK_MEDIA',
      correlation_id: 'm1',
    });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ command: 'FLUSH_MEDIA' });
    expect(
      provider(adapter, text({ event: 'MEDIA_MARK_PROCESSED', channel_id: '1', correlation_id: 'm1' }), false),
    ).toEqual({ type: 'mark', name: 'm1' });
    expect(provider(adapter, text({ event: 'MEDIA_XOFF', channel_id: '1' }), false)).toEqual({
      type: 'flow',
      paused: true,
    });
    expect(provider(adapter, Buffer.alloc(160), true)).toMatchObject({ type: 'media', leg: 'caller', timestampMs: 0 });
    expect(provider(adapter, Buffer.alloc(160), true)).toMatchObject({ timestampMs: 20 });
  });

  test('plain text: flow control pauses and resumes, audio before MEDIA_START and other formats are refused', () => {
    const adapter = adapters.asterisk(NO_UPGRADE);
    expect(code(() => provider(adapter, Buffer.alloc(160), true))).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(code(() => provider(adapters.asterisk(NO_UPGRADE), text('MEDIA_XON'), false))).toBe(
      'ERR_UNEXPECTED_MESSAGE',
    );
    expect(
      code(() => provider(adapters.asterisk(NO_UPGRADE), text('MEDIA_START connection_id:c1 format:slin12'), false)),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    provider(
      adapter,
      text('MEDIA_START connection_id:c1 channel:WebSocket/c1/0x1 format:slin optimal_frame_size:320 ptime:20'),
      false,
    );
    expect(provider(adapter, text('MEDIA_XOFF'), false)).toEqual({ type: 'flow', paused: true });
    expect(provider(adapter, text('MEDIA_XON'), false)).toEqual({ type: 'flow', paused: false });
    expect(provider(adapter, text('QUEUE_DRAINED'), false)).toEqual({ type: 'other' });
    expect(adapter.parseRuntimeMessage(text('ANSWER'), false)).toEqual({ type: 'other' });
    expect(code(() => adapter.parseRuntimeMessage(text('DANCE'), false))).toBe('ERR_UNKNOWN_EVENT');
  });
});

describe('Azure Communication Services', () => {
  const metadata = text({
    kind: 'AudioMetadata',
    audioMetadata: { subscriptionId: 's1', encoding: 'PCM', sampleRate: 16000, channels: 1, length: 640 },
  });
  const audio = (participant: string | undefined, atMs: number) =>
    text({
      kind: 'AudioData',
      audioData: {
        timestamp: new Date(Date.UTC(2025, 0, 1) + atMs).toISOString(),
        participantRawID: participant,
        data: Buffer.alloc(640).toString('base64'),
        silent: false,
      },
    });
  const legOf = (adapter: ProviderAdapter, participant: string | undefined, atMs: number) => {
    const event = provider(adapter, audio(participant, atMs), false);
    return event.type === 'media' ? [event.leg, event.timestampMs] : event.type;
  };

  test('the phone participant is the caller whoever speaks first; a third is not recorded; frames placed by timestamp', () => {
    const adapter = adapters.azure(NO_UPGRADE);
    provider(adapter, metadata, false);
    expect(legOf(adapter, '8:acs:agent', 0)).toEqual(['agent', 0]);
    expect(legOf(adapter, '4:+15551234567', 20)).toEqual(['caller', 20]);
    expect(legOf(adapter, '8:acs:supervisor', 40)).toBe('other');
    // Late, and placed where its timestamp says.
    expect(legOf(adapter, '8:acs:agent', 10)).toEqual(['agent', 10]);
  });

  test("?caller= names the caller; mixed audio (no participant) is the caller's leg", () => {
    const named = adapters.azure({ headers: {}, query: { caller: '8:acs:customer' } });
    provider(named, metadata, false);
    expect(legOf(named, '4:+15551234567', 0)).toEqual(['agent', 0]);
    expect(legOf(named, '8:acs:customer', 0)).toEqual(['caller', 0]);
    const mixed = adapters.azure(NO_UPGRADE);
    provider(mixed, metadata, false);
    expect(legOf(mixed, undefined, 0)).toEqual(['caller', 0]);
  });

  test('24 kHz is recorded at 16 kHz; other encodings and rates are refused, naming them', () => {
    const adapter = adapters.azure(NO_UPGRADE);
    const start = provider(
      adapter,
      text({ kind: 'AudioMetadata', audioMetadata: { encoding: 'PCM', sampleRate: 24000, channels: 1 } }),
      false,
    ) as Extract<ProviderEvent, { type: 'start' }>;
    expect(start.start.format.sampleRate).toBe(16000);
    expect(
      code(() =>
        provider(
          adapters.azure(NO_UPGRADE),
          text({ kind: 'AudioMetadata', audioMetadata: { encoding: 'PCM', sampleRate: 44100, channels: 1 } }),
          false,
        ),
      ),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(
      code(() =>
        provider(
          adapters.azure(NO_UPGRADE),
          text({ kind: 'AudioMetadata', audioMetadata: { encoding: 'PCM', sampleRate: 16000, channels: 2 } }),
          false,
        ),
      ),
    ).toBe('ERR_MALFORMED_MESSAGE');
  });
});

test('at the end of a resampled stream, flush hands over the last ms the filter held, where they belong', () => {
  const adapter = adapters.asterisk(NO_UPGRADE);
  provider(adapter, text('MEDIA_START connection_id:c1 format:slin48 optimal_frame_size:1920 ptime:20'), false);
  let endMs = 0;
  for (let n = 0; n < 5; n++) {
    const event = provider(adapter, Buffer.alloc(960 * 2), true) as Extract<ProviderEvent, { type: 'media' }>;
    endMs = event.timestampMs + event.payload.length / 2 / 16;
  }
  const [tail] = adapter.flush!() as Array<Extract<ProviderEvent, { type: 'media' }>>;
  expect(tail.timestampMs).toBeCloseTo(endMs, 9);
  // Five 20 ms frames in, 100 ms out, all told.
  expect(tail.timestampMs + tail.payload.length / 2 / 16).toBeCloseTo(100, 9);
  expect(adapter.flush!()).toEqual([]);
});
