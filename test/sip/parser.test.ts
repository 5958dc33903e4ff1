import {
  parseMessage,
  parseNameAddr,
  parseSipUri,
  parseVia,
  responseTo,
  serialize,
  SipParseError,
  type SipRequest,
} from '../../src/sip/message.js';
import { TORTURE, wire } from './fixtures/rfc4475.js';

describe('RFC 4475 torture messages', () => {
  test.each(TORTURE.filter((m) => m.valid).map((m) => [m.name, m] as const))('%s parses', (_, message) => {
    const buf = wire(message);
    const parsed = parseMessage(buf, false)!;
    expect(parsed).not.toBeNull();
    const { headers } = parsed.message;
    expect(headers.get('call-id')).toMatch(new RegExp(`^${message.name}\\.`));
    // A body is exactly Content-Length bytes: dblreq's second request is not part of the first.
    expect(parsed.message.body.length).toBe(Number(headers.get('content-length')));
  });

  test.each(TORTURE.filter((m) => !m.valid).map((m) => [m.name, m] as const))(
    '%s is refused with ERR_SIP_PARSE, and a request with its head read can be answered 400',
    (_, message) => {
      let error: unknown;
      try {
        parseMessage(wire(message), false);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SipParseError);
      const { headers } = error as SipParseError;
      if (headers) {
        const answer = serialize(responseTo({ headers }, 400, 'x'));
        expect(answer.toString()).toMatch(/^SIP\/2\.0 400 Bad Request\r\n/);
      }
    },
  );

  test('every prefix and single-byte corruption of every message parses or is refused, never crashes', () => {
    for (const message of TORTURE) {
      const buf = wire(message);
      for (let cut = 0; cut < buf.length; cut += 7) {
        for (const stream of [false, true]) {
          try {
            parseMessage(buf.subarray(0, cut), stream);
          } catch (err) {
            expect(err).toBeInstanceOf(SipParseError);
          }
        }
        const corrupt = Buffer.from(buf);
        corrupt[cut] = [0x00, 0x3a, 0x0a, 0x22, 0x3c][cut % 5];
        try {
          parseMessage(corrupt, false);
        } catch (err) {
          expect(err).toBeInstanceOf(SipParseError);
        }
      }
    }
  });

  test('wsinv: folding, compact forms, LWS, comma-separated and repeated values read as RFC 4475 §3.1.1.1 says', () => {
    const { message } = parseMessage(wire(TORTURE.find((m) => m.name === 'wsinv')!), false)!;
    const request = message as SipRequest;
    expect(request.method).toBe('INVITE');
    expect(parseSipUri(request.uri)).toMatchObject({ user: 'vivekg', host: 'chair-dnrc.example.com', headers: '' });
    expect(parseNameAddr(request.headers.get('to')!)).toMatchObject({
      display: '',
      uri: 'sip:vivekg@chair-dnrc.example.com',
      params: new Map([['tag', '1918181833n']]),
    });
    expect(parseNameAddr(request.headers.get('from')!)).toMatchObject({
      display: 'J Rosenberg \\"',
      params: new Map([['tag', '98asjd8']]),
    });
    expect(request.headers.get('max-forwards')).toBe('0068');
    expect(request.headers.get('cseq')).toBe('0009 INVITE');
    const vias = request.headers.getAll('via').map((v) => parseVia(v)!);
    expect(vias.map((v) => [v.transport, v.host, v.params.get('branch')])).toEqual([
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    expect(request.headers.get('subject')).toBe('');
    expect(request.headers.get('newfangledheader')).toBe('newfangled value continued newfangled value');
    expect(request.headers.get('unknownheaderwithunusualvalue')).toBe(';;,,;;,;');
    const contact = parseNameAddr(request.headers.get('contact')!)!;
    expect(contact.display).toBe('Quoted string ""');
    expect([...contact.params]).toEqual([
      ['newparam', 'newvalue'],
      ['secondparam', ''],
      ['q', '0.33'],
    ]);
  });

  test('esc01 and escnull: the Request-URI user is percent-decoded (the agent id)', () => {
    const esc = parseMessage(wire(TORTURE.find((m) => m.name === 'esc01')!), false)!.message as SipRequest;
    expect(parseSipUri(esc.uri)!.user).toBe('sips:user@example.com');
    const semi = parseMessage(wire(TORTURE.find((m) => m.name === 'semiuri')!), false)!.message as SipRequest;
    expect(parseSipUri(semi.uri)!.user).toBe('user;par=u@example.net');
    expect(semi.headers.getAll('accept')).toHaveLength(6);
  });

  test('on a stream, a message is returned once whole, and back-to-back messages one at a time', () => {
    const one = wire(TORTURE.find((m) => m.name === 'esc01')!);
    const two = wire(TORTURE.find((m) => m.name === 'lwsdisp')!);
    const both = Buffer.concat([Buffer.from('\r\n\r\n'), one, two]);
    expect(parseMessage(both.subarray(0, 100), true)).toBeNull();
    expect(parseMessage(both.subarray(0, 4 + one.length - 1), true)).toBeNull();
    const first = parseMessage(both, true)!;
    expect(first.length).toBe(4 + one.length);
    const second = parseMessage(both.subarray(first.length), true)!;
    expect(second.message.headers.get('call-id')).toMatch(/^lwsdisp\./);
    expect(second.length).toBe(two.length);
    // Without Content-Length a stream cannot tell where the message ends.
    const noLength = Buffer.from(two.toString().replace('l: 0\r\n', ''));
    expect(() => parseMessage(noLength, true)).toThrow(SipParseError);
  });

  test('serialize writes what parse reads back', () => {
    const { message } = parseMessage(wire(TORTURE.find((m) => m.name === 'wsinv')!), false)!;
    const again = parseMessage(serialize(message), true)!.message as SipRequest;
    // Content-Length is written last, from the body.
    const fields = (m: SipRequest) => m.headers.entries().filter(([name]) => name !== 'content-length');
    expect(fields(again)).toEqual(fields(message as SipRequest));
    expect(again.body.equals(message.body)).toBe(true);
    expect(serialize(message).toString()).toContain('Call-ID: wsinv.ndaksdj@192.0.2.1\r\n');
    expect(serialize(message).toString()).toContain('Content-Length: 150\r\n\r\nv=0\r\n');
  });
});
