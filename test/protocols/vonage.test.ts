import { adapters } from '../../src/protocols/index.js';
import type { ProviderAdapter } from '../../src/protocols/types.js';
import { code } from './kits.js';

const buf = (message: unknown) => Buffer.from(typeof message === 'string' ? message : JSON.stringify(message));
const noUpgrade = { headers: {}, query: {} };
const connected = (contentType = 'audio/l16;rate=16000', extra: Record<string, unknown> = {}) => ({
  event: 'websocket:connected',
  'content-type': contentType,
  agent_id: 'agent-3',
  token: 'secret',
  uuid: 'aaaaaaaa-bbbb-cccc-dddd-0123456789ab',
  priority: 2,
  ...extra,
});

function started(contentType?: string): ProviderAdapter {
  const adapter = adapters.vonage(noUpgrade);
  adapter.parseProviderMessage(buf(connected(contentType)), false);
  return adapter;
}

describe('vonage adapter', () => {
  test('websocket:connected is the start: string headers become params, uuid the call id', () => {
    const event = adapters.vonage(noUpgrade).parseProviderMessage(buf(connected()), false);
    expect(event).toEqual({
      type: 'start',
      start: {
        providerCallId: 'aaaaaaaa-bbbb-cccc-dddd-0123456789ab',
        params: { agent_id: 'agent-3', token: 'secret', uuid: 'aaaaaaaa-bbbb-cccc-dddd-0123456789ab' },
        format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
        legs: ['caller'],
        canSendAudio: true,
      },
    });
    const eight = started('audio/l16;rate=8000');
    expect(eight.parseProviderMessage(Buffer.alloc(320), true)).toMatchObject({ timestampMs: 0 });
    expect(eight.parseProviderMessage(Buffer.alloc(320), true)).toMatchObject({ timestampMs: 20 });
  });

  test('binary frames: position is counted, payload is the frame itself', () => {
    const adapter = started();
    const frames = [0, 1, 2].map((i) => Buffer.alloc(640, i));
    const events = frames.map(
      (f) => adapter.parseProviderMessage(f, true) as { leg: string; timestampMs: number; payload: Buffer },
    );
    expect(events.map((e) => e.timestampMs)).toEqual([0, 20, 40]);
    expect(events.every((e) => e.leg === 'caller')).toBe(true);
    expect(events[2].payload).toBe(frames[2]);
  });

  test('dtmf, notify echo as mark, cleared', () => {
    const adapter = started();
    expect(adapter.parseProviderMessage(buf({ event: 'websocket:dtmf', digit: '5', duration: 260 }), false)).toEqual({
      type: 'dtmf',
      digit: '5',
    });
    const mark = adapter.markMessage('consent')!;
    expect(JSON.parse(mark.data as string)).toEqual({ action: 'notify', payload: { name: 'consent' } });
    // Vonage echoes the notify payload back once playback reaches it.
    const echo = {
      event: 'websocket:notify',
      payload: (JSON.parse(mark.data as string) as { payload: unknown }).payload,
    };
    expect(adapter.parseProviderMessage(buf(echo), false)).toEqual({ type: 'mark', name: 'consent' });
    expect(adapter.parseProviderMessage(buf({ event: 'websocket:cleared' }), false)).toEqual({ type: 'other' });
  });

  test('error codes', () => {
    const adapter = adapters.vonage(noUpgrade);
    expect(code(() => adapter.parseProviderMessage(Buffer.alloc(640), true))).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(code(() => adapter.parseProviderMessage(buf('nope'), false))).toBe('ERR_MALFORMED_MESSAGE');
    expect(code(() => adapter.parseProviderMessage(buf({ event: 'websocket:party' }), false))).toBe(
      'ERR_UNKNOWN_EVENT',
    );
    expect(code(() => adapter.parseProviderMessage(buf({ event: 'websocket:connected' }), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
    expect(
      code(() => adapters.vonage(noUpgrade).parseProviderMessage(buf(connected('audio/l16;rate=22050')), false)),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(
      code(() => adapters.vonage(noUpgrade).parseProviderMessage(buf({ event: 'websocket:dtmf', digit: '1' }), false)),
    ).toBe('ERR_UNEXPECTED_MESSAGE');
    expect(
      code(() => adapters.vonage(noUpgrade).parseProviderMessage(buf(connected('audio/pcmu;rate=8000')), false)),
    ).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => adapters.vonage(noUpgrade).parseProviderMessage(buf(connected(';rate=8000')), false))).toBe(
      'ERR_UNSUPPORTED_CODEC',
    );
    expect(code(() => started().parseProviderMessage(Buffer.alloc(641), true))).toBe('ERR_BAD_PAYLOAD');
    expect(code(() => started().parseProviderMessage(buf({ event: 'websocket:dtmf' }), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
  });

  test('runtimeStartMessage drops the token header only', () => {
    const out = JSON.parse(adapters.vonage(noUpgrade).runtimeStartMessage(buf(connected()), false).data as string);
    const expected: Record<string, unknown> = connected();
    delete expected.token;
    expect(out).toEqual(expected);
  });

  test('24 kHz (audio/l16;rate=24000) is recorded at 16 kHz', () => {
    const adapter = adapters.vonage(noUpgrade);
    expect(adapter.parseProviderMessage(buf(connected('audio/l16;rate=24000')), false)).toMatchObject({
      start: { format: { codec: 'l16', sampleRate: 16000 } },
    });
    expect(adapter.parseProviderMessage(Buffer.alloc(960), true)).toMatchObject({ type: 'media', timestampMs: 0 });
  });

  test('runtime: binary audio, clear, notify', () => {
    const adapter = started();
    const frame = Buffer.alloc(640, 3);
    expect(adapter.parseRuntimeMessage(frame, true)).toEqual({ type: 'media', payload: frame });
    expect(adapter.parseRuntimeMessage(buf({ action: 'clear' }), false)).toEqual({ type: 'clear' });
    expect(adapter.parseRuntimeMessage(buf({ action: 'notify', payload: { x: 1 } }), false)).toEqual({ type: 'other' });
    expect(code(() => adapter.parseRuntimeMessage(buf({ action: 'dance' }), false))).toBe('ERR_UNKNOWN_EVENT');
    expect(adapter.mediaMessage(frame)).toEqual({ data: frame, binary: true });
    expect(JSON.parse(adapter.clearMessage()!.data as string)).toEqual({ action: 'clear' });
  });
});
