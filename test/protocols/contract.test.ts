import { randomBytes } from 'node:crypto';
import { adapters, TELNYX_AUTH_HEADER } from '../../src/protocols/index.js';
import type { Provider, ProviderAdapter, ProviderEvent } from '../../src/protocols/types.js';
import { code, KITS, SECRET, type Frame } from './kits.js';

/** Whole samples of noise: any byte may appear, so a payload that survives is bit-exact. */
const audio = (bytes: number) => randomBytes(bytes);

describe.each(Object.keys(KITS) as Provider[])('ProviderAdapter contract: %s', (provider) => {
  const kit = KITS[provider];
  const fresh = () => adapters[provider](kit.upgrade);
  const parse = (adapter: ProviderAdapter, frame: Frame) => adapter.parseProviderMessage(frame.data, frame.binary);
  const started = () => {
    const adapter = fresh();
    if (kit.connected) parse(adapter, kit.connected);
    parse(adapter, kit.start);
    return adapter;
  };

  test("connected, then a start with the stream's params and format", () => {
    const adapter = fresh();
    if (kit.connected) expect(parse(adapter, kit.connected)).toEqual({ type: 'connected' });
    const event = parse(adapter, kit.start) as Extract<ProviderEvent, { type: 'start' }>;
    expect(event.type).toBe('start');
    // As authentication reads them: the URL's query, under the start's own parameters.
    expect({ ...kit.upgrade.query, ...event.start.params }).toMatchObject({
      agent_id: 'agent-1',
      call_id: 'call-1',
      token: SECRET,
    });
    expect(event.start.format).toEqual(kit.format);
    expect(event.start.legs).toEqual(kit.carriesAgent ? ['caller', 'agent'] : ['caller']);
  });

  test("media: each leg's payload bit-exact, placed on the stream's clock", () => {
    const adapter = started();
    const legs = kit.carriesAgent ? (['caller', 'agent'] as const) : (['caller'] as const);
    for (let n = 0; n < 3; n++) {
      for (const leg of legs) {
        const payload = audio(kit.frameBytes);
        const event = parse(adapter, kit.media(leg, n, payload)) as Extract<ProviderEvent, { type: 'media' }>;
        expect({ type: event.type, leg: event.leg, timestampMs: event.timestampMs }).toEqual({
          type: 'media',
          leg,
          timestampMs: n * 20,
        });
        expect(Buffer.compare(event.payload, payload)).toBe(0);
      }
    }
  });

  const twoWay = kit.oneWay ? test.skip : test;

  if (kit.oneWay) {
    test('a provider that only listens: no marks, no audio back, no runtime, and the stream ends', () => {
      const adapter = started();
      expect(adapter.markMessage('consent-1')).toBeNull();
      expect(adapter.clearMessage()).toBeNull();
      expect(code(() => adapter.mediaMessage(audio(kit.frameBytes)))).toBe('ERR_BAD_PARAMETER');
      expect(code(() => adapter.runtimeStartMessage(kit.start.data, kit.start.binary))).toBe('ERR_BAD_PARAMETER');
      expect(parse(adapter, kit.stop!)).toMatchObject({ type: 'stop' });
    });
  }

  twoWay('dtmf, and a mark callrec sent comes back as that mark once played', () => {
    const adapter = started();
    if (kit.dtmf) expect(parse(adapter, kit.dtmf('#'))).toEqual({ type: 'dtmf', digit: '#' });
    const sent = adapter.markMessage('consent-1');
    // A provider without marks says so: callrec's consent prompt then fails closed.
    expect(sent === null).toBe(kit.echoMark === null);
    if (kit.echoMark) expect(parse(adapter, kit.echoMark(sent!))).toEqual({ type: 'mark', name: 'consent-1' });
    if (kit.stop) expect(parse(adapter, kit.stop)).toEqual({ type: 'stop' });
  });

  twoWay('what a runtime speaking the protocol sends', () => {
    const adapter = started();
    const payload = audio(kit.frameBytes);
    const media = adapter.parseRuntimeMessage(kit.runtimeMedia(payload).data, kit.runtimeMedia(payload).binary) as {
      type: string;
      payload: Buffer;
    };
    expect(media.type).toBe('media');
    expect(Buffer.compare(media.payload, payload)).toBe(0);
    if (kit.runtimeMark)
      expect(adapter.parseRuntimeMessage(kit.runtimeMark('r1').data, kit.runtimeMark('r1').binary)).toEqual(
        kit.runtimeMarkEvent('r1'),
      );
    if (kit.runtimeClear)
      expect(adapter.parseRuntimeMessage(kit.runtimeClear.data, kit.runtimeClear.binary)).toEqual({ type: 'clear' });
    expect(code(() => adapter.parseRuntimeMessage(Buffer.from('{"event":'), false))).toBe('ERR_MALFORMED_MESSAGE');
  });

  twoWay("builders round-trip: what callrec sends reads back as a runtime's message would", () => {
    const adapter = started();
    const payload = audio(kit.frameBytes);
    const media = adapter.mediaMessage(payload);
    const read = adapter.parseRuntimeMessage(Buffer.from(media.data), media.binary) as {
      type: string;
      payload: Buffer;
    };
    expect(read.type).toBe('media');
    expect(Buffer.compare(read.payload, payload)).toBe(0);
    const clear = adapter.clearMessage();
    expect(clear === null).toBe(kit.runtimeClear === null);
    if (clear) expect(adapter.parseRuntimeMessage(Buffer.from(clear.data), clear.binary)).toEqual({ type: 'clear' });
  });

  test('errors carry codes: malformed, unknown, oversize, bad payload, unsupported codec, media before start', () => {
    const adapter = started();
    if (kit.unknownEvent) {
      expect(code(() => adapter.parseProviderMessage(Buffer.from('{'), false))).toBe('ERR_MALFORMED_MESSAGE');
      expect(code(() => adapter.parseProviderMessage(Buffer.from('[1]'), false))).toBe('ERR_MALFORMED_MESSAGE');
      expect(code(() => parse(adapter, kit.unknownEvent!))).toBe('ERR_UNKNOWN_EVENT');
    }
    expect(code(() => adapter.parseProviderMessage(Buffer.alloc(65 * 1024, 0x20), false))).toBe(
      'ERR_MESSAGE_TOO_LARGE',
    );
    expect(code(() => adapter.parseProviderMessage(Buffer.alloc(65 * 1024), true))).toBe('ERR_MESSAGE_TOO_LARGE');
    expect(code(() => parse(adapter, kit.badPayload(0)))).toBe('ERR_BAD_PAYLOAD');
    // The socket leaves UTF-8 to the adapter (skipUTF8Validation): a text frame that is not UTF-8
    // is refused, a media frame included.
    expect(code(() => adapter.parseProviderMessage(Buffer.from('{"event":"\xff"}', 'latin1'), false))).toBe(
      'ERR_MALFORMED_MESSAGE',
    );
    const media = kit.media('caller', 0, audio(kit.frameBytes));
    if (!media.binary) {
      const invalid = Buffer.concat([media.data.subarray(0, -1), Buffer.from(',"x":"\xc3\x28"}', 'latin1')]);
      expect(code(() => adapter.parseProviderMessage(invalid, false))).toBe('ERR_MALFORMED_MESSAGE');
    }
    expect(code(() => parse(fresh(), kit.unsupportedCodecStart))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => parse(fresh(), kit.media('caller', 0, audio(kit.frameBytes))))).toBe('ERR_UNEXPECTED_MESSAGE');
    // An error loses nothing: the stream reads on.
    const payload = audio(kit.frameBytes);
    expect(
      Buffer.compare((parse(adapter, kit.media('caller', 0, payload)) as { payload: Buffer }).payload, payload),
    ).toBe(0);
  });

  twoWay("the runtime's start has no credential of callrec's and reads as the provider's own", () => {
    const out = fresh().runtimeStartMessage(kit.start.data, kit.start.binary);
    expect(out.binary).toBe(kit.start.binary);
    expect(kit.reveal(out.data.toString())).not.toContain(SECRET);
    // The runtime's copy is read without callrec's credentials (query, auth header); other headers as the platform sent them.
    const reread = adapters[provider]({
      headers: { ...kit.upgrade.headers, [TELNYX_AUTH_HEADER]: undefined },
      query: {},
    }).parseProviderMessage(Buffer.from(out.data), out.binary) as Extract<ProviderEvent, { type: 'start' }>;
    const original = (parse(fresh(), kit.start) as Extract<ProviderEvent, { type: 'start' }>).start;
    expect(reread.start.params.token).toBeUndefined();
    expect(reread.start).toEqual({
      ...original,
      params: Object.fromEntries(Object.entries(original.params).filter(([, v]) => v !== SECRET)),
    });
  });
});
