import { MediaMessageScan, type MediaLayout } from '../../src/protocols/media-scan.js';
import { ScratchDecoder } from '../../src/protocols/wire.js';
import { adapters } from '../../src/protocols/index.js';
import { splice as mutate } from '../../bench/mutate.js';
import { rng } from '../../bench/rng.js';

const PAYLOAD = Buffer.from(Array.from({ length: 160 }, (_, i) => (i * 37) & 0xff)).toString('base64');
const TWILIO = `{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"${PAYLOAD}"},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}`;
const TELNYX = `{"event":"media","sequence_number":"5","media":{"track":"outbound","chunk":3,"timestamp":40,"payload":"${PAYLOAD}"},"stream_id":"32de0dea-53cb-4b21-89a4-9b2e8f8f0b3d"}`;
const RUNTIME = `{"event":"media","streamSid":"MZ1","media":{"payload":"${PAYLOAD}"}}`;
const BANDWIDTH = `{"accountId":"5555555","callId":"c-2a913f94","eventType":"media","track":"inbound","sequenceNumber":2,"payload":"${PAYLOAD}"}`;

/** What the scan must report, derived the ordinary way: JSON.parse, then the same field rules; null = must not accept. */
function reference(text: string, layout: MediaLayout) {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const message = value as Record<string, unknown>;
  const media = (layout === 'flat' ? message : message.media) as Record<string, unknown> | undefined;
  if (
    (layout === 'flat' ? message.eventType : message.event) !== 'media' ||
    typeof media !== 'object' ||
    media === null ||
    Array.isArray(media)
  )
    return null;
  const count = (v: unknown) => (v === undefined ? -1 : typeof v === 'number' ? v : Number(v));
  return {
    leg:
      media.track === undefined
        ? null
        : media.track === 'inbound'
          ? 'caller'
          : media.track === 'outbound'
            ? 'agent'
            : 'bad',
    payload: media.payload === undefined ? null : media.payload,
    timestamp: count(media.timestamp),
    chunk: count(media.chunk),
  };
}

/** Scans `text`; when the scan accepts, its reading must match JSON.parse's exactly. Returns whether it accepted. */
function checkAgainstJsonParse(text: string, layout: MediaLayout = 'nested'): boolean {
  const bytes = Buffer.from(text, 'latin1');
  const scan = new MediaMessageScan(layout);
  if (!scan.scan(bytes)) return false;
  if (
    scan.payloadStart >= 0 &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control bytes are what this looks for.
    /[\u0000-\u001f\\\u0080-\u00ff]/.test(bytes.toString('latin1', scan.payloadStart, scan.payloadEnd))
  ) {
    // The scan leaves these to the payload's decoder, which must refuse them.
    expect(new ScratchDecoder().decodeBytes(bytes, scan.payloadStart, scan.payloadEnd, 1)).toBeNull();
    return false;
  }
  // What it accepts is ASCII, so valid UTF-8 without the socket checking it (skipUTF8Validation).
  if (!bytes.every((c) => c < 0x80)) throw new Error(`scan accepted non-ASCII ${JSON.stringify(text)}`);
  const expected = reference(bytes.toString('utf8'), layout);
  const got = {
    leg: scan.leg,
    payload: scan.payloadStart < 0 ? null : bytes.toString('utf8', scan.payloadStart, scan.payloadEnd),
    timestamp: scan.timestamp,
    chunk: scan.chunk,
  };
  if (expected === null || JSON.stringify(got) !== JSON.stringify(expected)) {
    throw new Error(
      `scan accepted ${JSON.stringify(text)} as ${JSON.stringify(got)}; JSON.parse reads ${JSON.stringify(expected)}`,
    );
  }
  return true;
}

describe('MediaMessageScan', () => {
  test('reads the media messages providers and runtimes send', () => {
    for (const text of [TWILIO, TELNYX, RUNTIME, ` \n${TWILIO}\r\t`]) expect(checkAgainstJsonParse(text)).toBe(true);
    const scan = new MediaMessageScan();
    scan.scan(Buffer.from(TELNYX));
    expect({ leg: scan.leg, timestamp: scan.timestamp, chunk: scan.chunk }).toEqual({
      leg: 'agent',
      timestamp: 40,
      chunk: 3,
    });
    scan.scan(Buffer.from(RUNTIME));
    expect({ leg: scan.leg, timestamp: scan.timestamp, chunk: scan.chunk }).toEqual({
      leg: null,
      timestamp: -1,
      chunk: -1,
    });
  });

  test('skips fields it does not read, whatever JSON they hold', () => {
    const extra = TWILIO.replace(
      '"streamSid"',
      '"x":[1,-2.5e+3,{"a":[true,false,null,"\\u00e9\\n"]},[]],"y":{},"z":"h\\"i","streamSid"',
    );
    expect(checkAgainstJsonParse(extra)).toBe(true);
    expect(checkAgainstJsonParse(TWILIO.replace('"media":{', '"media":{"extra":{"deep":[[[]]]},'))).toBe(true);
  });

  test('leaves to JSON.parse what it does not fully understand', () => {
    const declined = [
      TWILIO.replace('"event":"media"', '"event":"start"'), // another event
      TWILIO.replace('"event"', '"ev\\u0065nt"'), // an escaped key
      TWILIO.replace('"inbound"', '"inb\\u006fund"'), // an escape in a field it reads
      TWILIO.replace('"inbound"', '"both"'), // a track it does not know
      TWILIO.replace('"streamSid"', '"event":"media","streamSid"'), // a repeated key (JSON.parse keeps the last)
      TWILIO.replace('"chunk":"2"', '"chunk":"2","chunk":"3"'),
      TWILIO.replace('"timestamp":"20"', '"timestamp":"2e1"'), // not a plain integer
      TWILIO.replace('"timestamp":"20"', '"timestamp":20.0'),
      TWILIO.replace('"timestamp":"20"', '"timestamp":null'),
      TWILIO.replace('"timestamp":"20"', '"timestamp":"1234567890123456"'), // too long to stay exact
      TWILIO.replace('"media":{', '"media":[{').replace('},"streamSid"', '}],"streamSid"'),
      TWILIO.replace('"MZ18', '"\u00e9MZ18'), // not ASCII: left to the parser, which checks the UTF-8
      TWILIO.replace('"streamSid"', '"x":"\u007f","streamSid"'),
      TWILIO.slice(0, -1), // torn
      `${TWILIO}x`,
      `[${TWILIO}]`,
      '{"event":"media"}', // no media object
      TWILIO.replace('"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"', `"deep":${'['.repeat(40)}${']'.repeat(40)}`), // deeper than it recurses
    ];
    for (const text of declined) expect(checkAgainstJsonParse(text)).toBe(false);
  });

  test('never accepts what JSON.parse rejects or reads otherwise (20,000 mutated messages)', () => {
    const random = rng(20261202);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let text = [TWILIO, TELNYX, RUNTIME][i % 3];
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) text = mutate(text, random);
      if (checkAgainstJsonParse(text)) accepted++;
    }
    // Mutations inside the payload or the ids keep the message valid: the scan must take those.
    expect(accepted).toBeGreaterThan(1000);
  });

  test('flat (Bandwidth): reads the top-level fields, declines the nested shape, and never reads otherwise than JSON.parse (10,000 mutated messages)', () => {
    expect(checkAgainstJsonParse(BANDWIDTH, 'flat')).toBe(true);
    const scan = new MediaMessageScan('flat');
    scan.scan(Buffer.from(BANDWIDTH.replace('"inbound"', '"outbound"')));
    expect({ leg: scan.leg, timestamp: scan.timestamp, chunk: scan.chunk }).toEqual({
      leg: 'agent',
      timestamp: -1,
      chunk: -1,
    });
    for (const text of [
      TWILIO,
      BANDWIDTH.replace('"eventType":"media"', '"eventType":"start"'),
      BANDWIDTH.replace('"eventType"', '"event"'),
    ]) {
      expect(checkAgainstJsonParse(text, 'flat')).toBe(false);
    }
    expect(checkAgainstJsonParse(BANDWIDTH)).toBe(false);
    const random = rng(20261207);
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      let text = BANDWIDTH;
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) text = mutate(text, random);
      if (checkAgainstJsonParse(text, 'flat')) accepted++;
    }
    expect(accepted).toBeGreaterThan(500);
  });
});

describe("ScratchDecoder.decodeBytes (the fast path's payload decoder)", () => {
  test('decodes as Buffer.from does, both alphabets, every padding', () => {
    const random = rng(7);
    const decoder = new ScratchDecoder();
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: n % 50 }, () => Math.floor(random() * 256)));
      for (const text of [bytes.toString('base64'), bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_')]) {
        const src = Buffer.from(`"${text}"`, 'latin1');
        expect(decoder.decodeBytes(src, 1, src.length - 1, 1)?.equals(bytes)).toBe(true);
      }
    }
  });

  test('refuses text that is not whole, padded base64, and payloads of part samples', () => {
    const decoder = new ScratchDecoder();
    for (const text of [
      'abc',
      'ab$d',
      'a=bc',
      'ab=c',
      'a===',
      '====',
      'ab\\d',
      'ab d',
      'QQ=\u0080',
      'QU\u0080D',
      'QUJDRA==QUJD',
    ]) {
      const src = Buffer.from(text, 'latin1');
      expect(decoder.decodeBytes(src, 0, src.length, 1)).toBeNull();
    }
    // Three bytes are not whole 16-bit samples.
    expect(decoder.decodeBytes(Buffer.from('QUJD'), 0, 4, 2)).toBeNull();
    expect(decoder.decodeBytes(Buffer.from('QUJD'), 0, 4, 1)?.toString()).toBe('ABC');
  });
});

describe('adapters with the fast path', () => {
  test('a frame reads the same whether the scan or JSON.parse reads it', () => {
    for (const provider of ['twilio', 'telnyx', 'bandwidth'] as const) {
      const start = {
        twilio: {
          event: 'start',
          start: {
            streamSid: 'MZ1',
            callSid: 'CA1',
            tracks: ['inbound', 'outbound'],
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
          },
        },
        telnyx: {
          event: 'start',
          stream_id: 's1',
          start: { call_control_id: 'v3:1', media_format: { encoding: 'PCMU', sample_rate: 8000, channels: 1 } },
        },
        bandwidth: {
          eventType: 'start',
          metadata: {
            callId: 'c-1',
            streamId: 's-1',
            tracks: [{ name: 'inbound', mediaFormat: { encoding: 'audio/PCMU', sampleRate: 8000 } }],
          },
        },
      }[provider];
      const fast = adapters[provider]({ headers: {}, query: {} });
      const slow = adapters[provider]({ headers: {}, query: {} });
      fast.parseProviderMessage(Buffer.from(JSON.stringify(start)), false);
      slow.parseProviderMessage(Buffer.from(JSON.stringify(start)), false);
      const text = { twilio: TWILIO, telnyx: TELNYX, bandwidth: BANDWIDTH }[provider];
      // The escaped key sends the same message down the JSON.parse path.
      const a = fast.parseProviderMessage(Buffer.from(text), false) as { payload: Buffer };
      const aCopy = { ...a, payload: Buffer.from(a.payload) };
      const b = slow.parseProviderMessage(
        Buffer.from(text.replace(/"(event|eventType)"/, (key) => key.replace('e', '\\u0065'))),
        false,
      ) as { payload: Buffer };
      expect({ ...b, payload: Buffer.from(b.payload) }).toEqual(aCopy);
      expect(aCopy.payload.equals(Buffer.from(PAYLOAD, 'base64'))).toBe(true);
    }
  });

  test('a bad payload is still reported as the general parser reports it', () => {
    const adapter = adapters.twilio({ headers: {}, query: {} });
    adapter.parseProviderMessage(
      Buffer.from(
        JSON.stringify({
          event: 'start',
          start: { streamSid: 'MZ1', mediaFormat: { encoding: 'audio/l16', sampleRate: 8000 } },
        }),
      ),
      false,
    );
    const odd = TWILIO.replace(PAYLOAD, 'AAA='); // 2 bytes: fine for L16
    expect(() => adapter.parseProviderMessage(Buffer.from(odd), false)).not.toThrow();
    expect(() => adapter.parseProviderMessage(Buffer.from(TWILIO.replace(PAYLOAD, 'AA==')), false)).toThrow(
      'media.payload: not a whole number of samples',
    );
    expect(() => adapter.parseProviderMessage(Buffer.from(TWILIO.replace(PAYLOAD, 'AAA$AAAA')), false)).toThrow(
      'media.payload: not valid base64',
    );
  });
});
