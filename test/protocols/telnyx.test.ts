import { adapters, TELNYX_AUTH_HEADER } from '../../src/protocols/index.js';
import type { ProviderAdapter, ProviderEvent } from '../../src/protocols/types.js';
import { code } from './kits.js';

const STREAM_ID = '32DE0DEA-53CB-4B21-89A4-9E1819C043BC';
const CALL_ID = 'v3:2EC-70CTEjlUq3tDM0CxKXIt5-5N4iP4wo7_-PfH-qub97Sk4EqO5w';
const buf = (message: unknown) => Buffer.from(typeof message === 'string' ? message : JSON.stringify(message));
const noUpgrade = { headers: {}, query: {} };

function startMessage(start: Record<string, unknown> = {}) {
  return {
    event: 'start',
    sequence_number: '1',
    start: {
      user_id: '3e6f995f-85f7-4705-9741-53b116d28237',
      call_control_id: CALL_ID,
      client_state: Buffer.from(JSON.stringify({ tenant: 'acme', token: 'state-secret' })).toString('base64'),
      from: '+13122010094',
      to: '+13122123456',
      media_format: { encoding: 'L16', sample_rate: 16000, channels: 1 },
      custom_parameters: { agent_id: 'agent-9', token: 'param-secret' },
      ...start,
    },
    stream_id: STREAM_ID,
  };
}

function media(track: string, seq: number, payload: Buffer, timestamp: string | number | undefined) {
  return {
    event: 'media',
    sequence_number: String(seq),
    media: {
      track,
      chunk: String(seq - 1),
      ...(timestamp === undefined ? {} : { timestamp }),
      payload: payload.toString('base64'),
    },
    stream_id: STREAM_ID,
  };
}

function started(start = startMessage()): ProviderAdapter {
  const adapter = adapters.telnyx(noUpgrade);
  adapter.parseProviderMessage(buf({ event: 'connected', version: '1.0.0' }), false);
  adapter.parseProviderMessage(buf(start), false);
  return adapter;
}

describe('telnyx adapter', () => {
  test('start: L16 big-endian, both legs, params from custom_parameters over client_state', () => {
    const event = adapters.telnyx(noUpgrade).parseProviderMessage(buf(startMessage()), false);
    // Telnyx's start does not say whether the stream is bidirectional: no answer, not a guess.
    expect('canSendAudio' in (event as Extract<ProviderEvent, { type: 'start' }>).start).toBe(false);
    expect(event).toEqual({
      type: 'start',
      start: {
        providerCallId: CALL_ID,
        streamId: STREAM_ID,
        params: { tenant: 'acme', agent_id: 'agent-9', token: 'param-secret' },
        format: { codec: 'l16', sampleRate: 16000, byteOrder: 'be' },
        legs: ['caller', 'agent'],
      },
    });
  });

  test('PCMU/PCMA at 8 kHz; others rejected', () => {
    const at = (encoding: string, sample_rate: number) =>
      adapters
        .telnyx(noUpgrade)
        .parseProviderMessage(buf(startMessage({ media_format: { encoding, sample_rate, channels: 1 } })), false);
    expect((at('PCMA', 8000) as Extract<ProviderEvent, { type: 'start' }>).start.format).toEqual({
      codec: 'pcma',
      sampleRate: 8000,
    });
    expect((at('PCMU', 8000) as Extract<ProviderEvent, { type: 'start' }>).start.format).toEqual({
      codec: 'pcmu',
      sampleRate: 8000,
    });
    expect(code(() => at('OPUS', 16000))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => at('G722', 8000))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => at('L16', 24000))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => at('PCMU', 16000))).toBe('ERR_UNSUPPORTED_CODEC');
  });

  test('auth header becomes the token when no token param; non-JSON client_state is ignored', () => {
    const adapter = adapters.telnyx({ headers: { [TELNYX_AUTH_HEADER]: 'header-secret' }, query: {} });
    const event = adapter.parseProviderMessage(
      buf(
        startMessage({
          client_state: Buffer.from('plain text').toString('base64'),
          custom_parameters: [{ name: 'agent_id', value: 'a1' }],
        }),
      ),
      false,
    ) as Extract<ProviderEvent, { type: 'start' }>;
    expect(event.start.params).toEqual({ agent_id: 'a1', token: 'header-secret' });
    const withParam = adapters
      .telnyx({ headers: { [TELNYX_AUTH_HEADER]: 'header-secret' }, query: {} })
      .parseProviderMessage(buf(startMessage()), false) as Extract<ProviderEvent, { type: 'start' }>;
    expect(withParam.start.params.token).toBe('param-secret');
  });

  test('media: tracks, string or numeric timestamps, chunk fallback', () => {
    const adapter = started();
    const audio = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const ev = adapter.parseProviderMessage(buf(media('inbound', 4, audio, '60')), false) as {
      leg: string;
      timestampMs: number;
      payload: Buffer;
    };
    expect(ev).toMatchObject({ type: 'media', leg: 'caller', timestampMs: 60 });
    expect([...ev.payload]).toEqual([0x12, 0x34, 0x56, 0x78]);
    expect(adapter.parseProviderMessage(buf(media('outbound', 5, audio, 80)), false)).toMatchObject({
      leg: 'agent',
      timestampMs: 80,
    });
    // 320 samples at 16 kHz = 20 ms; chunk 3 starts at 40 ms.
    expect(adapter.parseProviderMessage(buf(media('inbound', 4, Buffer.alloc(640), undefined)), false)).toMatchObject({
      timestampMs: 40,
    });
  });

  test('L16 payload of an odd byte count is rejected', () => {
    const adapter = started();
    expect(code(() => adapter.parseProviderMessage(buf(media('inbound', 2, Buffer.alloc(3), '0')), false))).toBe(
      'ERR_BAD_PAYLOAD',
    );
  });

  test('dtmf, mark, error, stop', () => {
    const adapter = started();
    expect(
      adapter.parseProviderMessage(
        buf({
          event: 'dtmf',
          stream_id: STREAM_ID,
          occurred_at: '2024-01-01T00:00:00Z',
          sequence_number: '9',
          dtmf: { digit: '#' },
        }),
        false,
      ),
    ).toEqual({ type: 'dtmf', digit: '#' });
    expect(
      adapter.parseProviderMessage(
        buf({ event: 'mark', sequence_number: '10', stream_id: STREAM_ID, mark: { name: 'p1' } }),
        false,
      ),
    ).toEqual({ type: 'mark', name: 'p1' });
    // An error frame must not end the stream.
    expect(
      adapter.parseProviderMessage(
        buf({
          event: 'error',
          sequence_number: '11',
          stream_id: STREAM_ID,
          payload: { code: 100003, title: 'malformed_frame', detail: 'bad' },
        }),
        false,
      ),
    ).toEqual({ type: 'other' });
    expect(
      adapter.parseProviderMessage(
        buf({
          event: 'stop',
          sequence_number: '12',
          stop: { user_id: 'u', call_control_id: CALL_ID },
          stream_id: STREAM_ID,
        }),
        false,
      ),
    ).toEqual({ type: 'stop' });
  });

  test('error codes', () => {
    const adapter = adapters.telnyx(noUpgrade);
    expect(code(() => adapter.parseProviderMessage(buf('{'), false))).toBe('ERR_MALFORMED_MESSAGE');
    expect(code(() => adapter.parseProviderMessage(buf(media('inbound', 2, Buffer.alloc(2), '0')), false))).toBe(
      'ERR_UNEXPECTED_MESSAGE',
    );
    expect(code(() => adapter.parseProviderMessage(buf({ event: 'ping' }), false))).toBe('ERR_UNKNOWN_EVENT');
    expect(
      code(() => adapter.parseProviderMessage(buf(startMessage({ media_format: { encoding: 'L16' } })), false)),
    ).toBe('ERR_MALFORMED_MESSAGE');
    const live = started();
    const bad = media('inbound', 2, Buffer.alloc(2), '0');
    bad.media.payload = 'AA A';
    expect(code(() => live.parseProviderMessage(buf(bad), false))).toBe('ERR_BAD_PAYLOAD');
    expect(code(() => live.parseProviderMessage(buf(media('inbound', 2, Buffer.alloc(2), 'soon')), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
  });

  test('runtimeStartMessage removes the token from custom_parameters and client_state', () => {
    const adapter = adapters.telnyx(noUpgrade);
    const out = JSON.parse(adapter.runtimeStartMessage(buf(startMessage()), false).data as string);
    expect(out.start.custom_parameters).toEqual({ agent_id: 'agent-9' });
    expect(JSON.parse(Buffer.from(out.start.client_state, 'base64').toString())).toEqual({ tenant: 'acme' });
    expect(out.start.media_format).toEqual({ encoding: 'L16', sample_rate: 16000, channels: 1 });
    expect(out.stream_id).toBe(STREAM_ID);
    const list = JSON.parse(
      adapter.runtimeStartMessage(
        buf(
          startMessage({
            custom_parameters: [
              { name: 'token', value: 'x' },
              { name: 'agent_id', value: 'a' },
            ],
          }),
        ),
        false,
      ).data as string,
    );
    expect(list.start.custom_parameters).toEqual([{ name: 'agent_id', value: 'a' }]);
  });

  test("runtimeStartMessage also removes the auth header's value under any name, and only what it must", () => {
    const adapter = adapters.telnyx({ headers: { [TELNYX_AUTH_HEADER]: 'header-secret' }, query: {} });
    const start = startMessage({
      client_state: Buffer.from(JSON.stringify({ tenant: 'acme', auth: 'header-secret' })).toString('base64'),
      custom_parameters: [
        { name: 'agent_id', value: 'a' },
        { name: 'stream_auth_token', value: 'header-secret' },
      ],
    });
    const out = JSON.parse(adapter.runtimeStartMessage(buf(start), false).data as string);
    expect(out.start.custom_parameters).toEqual([{ name: 'agent_id', value: 'a' }]);
    expect(JSON.parse(Buffer.from(out.start.client_state, 'base64').toString())).toEqual({ tenant: 'acme' });
    // A start with no credential in it goes to the runtime as Telnyx sent it.
    const clean = startMessage({ client_state: 'aGF2ZSBhIG5pY2UgZGF5ID1d', custom_parameters: { agent_id: 'a' } });
    expect(adapter.runtimeStartMessage(buf(clean), false).data).toBe(JSON.stringify(clean));
  });

  test('a Telnyx-speaking runtime (pipecat) plays L16 big-endian and mp3 alike: bytes are relayed as sent', () => {
    const adapter = started();
    // pipecat's TelnyxFrameSerializer writes Python json.dumps text: `{"event": "media", "media": {"payload": …}}`.
    const l16 = Buffer.from([0x12, 0x34, 0xab, 0xcd]);
    const ev = adapter.parseRuntimeMessage(
      Buffer.from(`{"event": "media", "media": {"payload": "${l16.toString('base64')}"}}`),
      false,
    ) as { payload: Buffer };
    expect([...ev.payload]).toEqual([...l16]);
    // An MP3 playback frame is an odd byte count: accepted, since Telnyx plays it.
    const mp3 = adapter.parseRuntimeMessage(
      buf({ event: 'media', media: { payload: Buffer.from([0xff, 0xfb, 0x90]).toString('base64') } }),
      false,
    ) as { payload: Buffer };
    expect(mp3.payload.length).toBe(3);
    expect(code(() => adapter.parseRuntimeMessage(buf({ event: 'media', media: { payload: 'A' } }), false))).toBe(
      'ERR_BAD_PAYLOAD',
    );
  });

  test('runtime messages and messages callrec sends', () => {
    const adapter = started();
    const ev = adapter.parseRuntimeMessage(buf({ event: 'media', media: { payload: 'AAEC' } }), false) as {
      type: string;
      payload: Buffer;
    };
    expect(ev.type).toBe('media');
    expect([...ev.payload]).toEqual([0, 1, 2]);
    expect(adapter.parseRuntimeMessage(buf({ event: 'mark', mark: { name: 'x' } }), false)).toEqual({
      type: 'mark',
      name: 'x',
    });
    expect(adapter.parseRuntimeMessage(buf({ event: 'clear' }), false)).toEqual({ type: 'clear' });
    expect(JSON.parse(adapter.mediaMessage(Buffer.from([0, 1, 2])).data as string)).toEqual({
      event: 'media',
      media: { payload: 'AAEC' },
    });
    expect(JSON.parse(adapter.markMessage('n')!.data as string)).toEqual({ event: 'mark', mark: { name: 'n' } });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ event: 'clear' });
  });
});
