import { adapters } from '../../src/protocols/index.js';
import type { ProviderAdapter, ProviderEvent } from '../../src/protocols/types.js';
import { code } from './kits.js';

const STREAM_SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
const CALL_SID = 'CA5ea0b9ee9e2eaf1f4fa7e1d9e5c2a8b6';

const upgrade = { headers: {}, query: {} };
const buf = (message: unknown) => Buffer.from(typeof message === 'string' ? message : JSON.stringify(message));

function startMessage(overrides: Record<string, unknown> = {}) {
  return {
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid: 'AC2ab2f3c6f42b5a6f2b2c4e8d2a7f2d11',
      streamSid: STREAM_SID,
      callSid: CALL_SID,
      tracks: ['inbound', 'outbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      customParameters: { agent_id: 'agent-7', token: 'secret-key' },
      ...overrides,
    },
    streamSid: STREAM_SID,
  };
}

function media(track: string, chunk: number, payload: Buffer, timestamp?: string) {
  return {
    event: 'media',
    sequenceNumber: String(chunk + 2),
    media: {
      track,
      chunk: String(chunk),
      ...(timestamp === undefined ? {} : { timestamp }),
      payload: payload.toString('base64'),
    },
    streamSid: STREAM_SID,
  };
}

function started(start = startMessage()): ProviderAdapter {
  const adapter = adapters.twilio(upgrade);
  adapter.parseProviderMessage(buf({ event: 'connected', protocol: 'Call', version: '1.0.0' }), false);
  adapter.parseProviderMessage(buf(start), false);
  return adapter;
}

describe('twilio adapter', () => {
  test('connected and start', () => {
    const adapter = adapters.twilio(upgrade);
    expect(
      adapter.parseProviderMessage(buf({ event: 'connected', protocol: 'Call', version: '1.0.0' }), false),
    ).toEqual({ type: 'connected' });
    const event = adapter.parseProviderMessage(buf(startMessage()), false);
    expect(event).toEqual({
      type: 'start',
      start: {
        providerCallId: CALL_SID,
        streamId: STREAM_SID,
        params: { agent_id: 'agent-7', token: 'secret-key' },
        format: { codec: 'pcmu', sampleRate: 8000 },
        legs: ['caller', 'agent'],
        canSendAudio: false,
      },
    });
  });

  test('<Connect><Stream> carries only the caller leg and can carry audio back; a fork cannot', () => {
    const startOf = (tracks: string[] | undefined) =>
      (
        adapters.twilio(upgrade).parseProviderMessage(buf(startMessage({ tracks })), false) as Extract<
          ProviderEvent,
          { type: 'start' }
        >
      ).start;
    expect(startOf(['inbound'])).toMatchObject({ legs: ['caller'], canSendAudio: true });
    expect(startOf(undefined)).toMatchObject({ legs: ['caller'], canSendAudio: true });
    expect(startOf(['outbound'])).toMatchObject({ legs: ['agent'], canSendAudio: false });
    expect(startOf(['inbound', 'outbound'])).toMatchObject({ legs: ['caller', 'agent'], canSendAudio: false });
  });

  test('media maps tracks to legs and uses the timestamp', () => {
    const adapter = started();
    const audio = Buffer.alloc(160, 0x7f);
    audio[0] = 1;
    const inbound = adapter.parseProviderMessage(buf(media('inbound', 3, audio, '40')), false);
    expect(inbound).toMatchObject({ type: 'media', leg: 'caller', timestampMs: 40 });
    expect(Buffer.compare((inbound as { payload: Buffer }).payload, audio)).toBe(0);
    expect(adapter.parseProviderMessage(buf(media('outbound', 3, audio, '45')), false)).toMatchObject({
      leg: 'agent',
      timestampMs: 45,
    });
  });

  test('media without a timestamp is placed by chunk number', () => {
    const adapter = started();
    expect(adapter.parseProviderMessage(buf(media('inbound', 4, Buffer.alloc(160))), false)).toMatchObject({
      timestampMs: 60,
    });
  });

  test('dtmf, mark, stop', () => {
    const adapter = started();
    expect(
      adapter.parseProviderMessage(
        buf({
          event: 'dtmf',
          streamSid: STREAM_SID,
          sequenceNumber: '5',
          dtmf: { track: 'inbound_track', digit: '1' },
        }),
        false,
      ),
    ).toEqual({ type: 'dtmf', digit: '1' });
    expect(
      adapter.parseProviderMessage(
        buf({ event: 'mark', sequenceNumber: '4', streamSid: STREAM_SID, mark: { name: 'consent-end' } }),
        false,
      ),
    ).toEqual({ type: 'mark', name: 'consent-end' });
    expect(
      adapter.parseProviderMessage(
        buf({
          event: 'stop',
          sequenceNumber: '6',
          streamSid: STREAM_SID,
          stop: { accountSid: 'AC1', callSid: CALL_SID },
        }),
        false,
      ),
    ).toEqual({ type: 'stop' });
  });

  test('error codes', () => {
    const adapter = adapters.twilio(upgrade);
    expect(code(() => adapter.parseProviderMessage(buf('not json'), false))).toBe('ERR_MALFORMED_MESSAGE');
    expect(
      code(() =>
        adapter.parseProviderMessage(buf({ event: 'media', media: { track: 'inbound', payload: '' } }), false),
      ),
    ).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(code(() => adapter.parseProviderMessage(buf({ event: 'hello' }), false))).toBe('ERR_UNKNOWN_EVENT');
    expect(code(() => adapter.parseProviderMessage(buf({ sequenceNumber: '1' }), false))).toBe('ERR_MALFORMED_MESSAGE');
    expect(
      code(() =>
        adapter.parseProviderMessage(
          buf(startMessage({ mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 16000 } })),
          false,
        ),
      ),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(
      code(() =>
        adapter.parseProviderMessage(
          buf(startMessage({ mediaFormat: { encoding: 'audio/opus', sampleRate: 8000 } })),
          false,
        ),
      ),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => adapter.parseProviderMessage(buf(startMessage({ streamSid: 42 })), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );

    const live = started();
    const bad = { ...media('inbound', 1, Buffer.alloc(160), '0') };
    bad.media.payload = 'abc$';
    expect(code(() => live.parseProviderMessage(buf(bad), false))).toBe('ERR_BAD_PAYLOAD');
    bad.media.payload = 'abc';
    expect(code(() => live.parseProviderMessage(buf(bad), false))).toBe('ERR_BAD_PAYLOAD');
    expect(code(() => live.parseProviderMessage(buf(media('sideways', 1, Buffer.alloc(160), '0')), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
    expect(
      code(() => live.parseProviderMessage(buf({ event: 'media', media: { track: 'inbound', payload: 5 } }), false)),
    ).toBe('ERR_MALFORMED_MESSAGE');
  });

  test('error messages name the field and fit a close reason', () => {
    const adapter = started();
    try {
      adapter.parseProviderMessage(buf({ event: 'media', media: { track: 'inbound' } }), false);
      throw new Error('expected a throw');
    } catch (err) {
      expect((err as Error).message).toContain('media.payload');
      expect(Buffer.byteLength((err as Error).message)).toBeLessThanOrEqual(123);
    }
  });

  test('runtimeStartMessage strips the token and keeps the rest', () => {
    const adapter = adapters.twilio(upgrade);
    const out = adapter.runtimeStartMessage(buf(startMessage()), false);
    expect(out.binary).toBe(false);
    const expected = startMessage();
    delete (expected.start.customParameters as Record<string, string>).token;
    expect(out.data).toBe(JSON.stringify(expected));
  });

  test('parses runtime media/mark/clear', () => {
    const adapter = started();
    const audio = Buffer.from([1, 2, 3, 4]);
    const ev = adapter.parseRuntimeMessage(
      buf({ event: 'media', streamSid: STREAM_SID, media: { payload: audio.toString('base64') } }),
      false,
    );
    expect(ev.type).toBe('media');
    expect([...(ev as { payload: Buffer }).payload]).toEqual([1, 2, 3, 4]);
    expect(
      adapter.parseRuntimeMessage(buf({ event: 'mark', streamSid: STREAM_SID, mark: { name: 'm1' } }), false),
    ).toEqual({ type: 'mark', name: 'm1' });
    expect(adapter.parseRuntimeMessage(buf({ event: 'clear', streamSid: STREAM_SID }), false)).toEqual({
      type: 'clear',
    });
    expect(code(() => adapter.parseRuntimeMessage(buf({ event: 'bogus' }), false))).toBe('ERR_UNKNOWN_EVENT');
  });

  test('messages callrec sends carry the streamSid', () => {
    const adapter = started();
    expect(JSON.parse(adapter.mediaMessage(Buffer.from([0xff, 0x7f])).data as string)).toEqual({
      event: 'media',
      streamSid: STREAM_SID,
      media: { payload: '/38=' },
    });
    expect(JSON.parse(adapter.markMessage('prompt')!.data as string)).toEqual({
      event: 'mark',
      streamSid: STREAM_SID,
      mark: { name: 'prompt' },
    });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ event: 'clear', streamSid: STREAM_SID });
    expect(code(() => adapters.twilio(upgrade).markMessage('x'))).toBe('ERR_UNEXPECTED_MESSAGE');
  });

  test('10k media parses reuse the scratch memory', () => {
    const adapter = started();
    const frames = [160, 80, 160].map((n, i) => buf(media('inbound', i + 1, Buffer.alloc(n, i + 1), String(i * 20))));
    const first = adapter.parseProviderMessage(frames[0], false) as { payload: Buffer };
    const backing = first.payload.buffer;
    for (let i = 0; i < 10_000; i++) {
      const event = adapter.parseProviderMessage(frames[i % 3], false) as { payload: Buffer };
      expect(event.payload.buffer).toBe(backing);
      expect(event.payload.byteOffset).toBe(first.payload.byteOffset);
      expect(event.payload.length).toBe(i % 3 === 1 ? 80 : 160);
      expect(event.payload[0]).toBe((i % 3) + 1);
    }
  });
});
