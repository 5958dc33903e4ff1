/**
 * The fuzzer's SIP and RTP mutations: of SIP requests (RFC 4475's torture messages and the
 * SIPREC INVITE of `bench/siprec-client.ts`: start line, headers, Content-Length, multipart
 * boundaries, the SDP offer and the rs-metadata XML), and of RTP/RTCP datagrams. Pure: every
 * choice comes from the random source passed in, so a case is rebuilt exactly from its seed.
 */
import { inviteMessage, type InviteParts, rtpPacket, sipMessage } from './siprec-client.js';
import { between, pick, splice, type Random } from './mutate.js';

/** Header values and body text that break assumptions. */
const ODD_TEXT = [
  '',
  ' ',
  '\t',
  '0',
  '-1',
  '4294967296',
  '99999999999999999999',
  ';',
  ';;;',
  ',',
  '<',
  '>',
  '"',
  '\\',
  '%00',
  '\u0000',
  '\u00ff',
  '😀',
  '\r\n',
  '\r\n ',
  'x'.repeat(4000),
  '<sip:a@[::1]:99999>',
  'sip:',
  'SIP/2.0/UDP',
  'multipart/mixed',
  'multipart/mixed;boundary=',
  'multipart/mixed;boundary="a b"',
  'application/sdp',
  'application/rs-metadata+xml',
];

/** Lines an SDP offer may hold, odd or not. */
const SDP_LINES = [
  'm=audio 0 RTP/AVP 0',
  'm=audio 65536 RTP/AVP 0',
  'm=audio -1 RTP/AVP 0',
  'm=audio 49170 RTP/AVP',
  'm=audio 49170 RTP/SAVP 0',
  'm=video 49170 RTP/AVP 31',
  'm=audio 49170/2 RTP/AVP 0',
  'a=rtpmap:0 PCMU/0',
  'a=rtpmap:96 opus/48000/2',
  'a=rtpmap:101 telephone-event/8000',
  'a=label:1',
  'a=label:',
  'a=sendonly',
  'a=recvonly',
  'a=inactive',
  'c=IN IP6 ::1',
  'c=IN IP4 999.1.1.1',
  'c=',
  'a=ptime:1000000',
];

/** XML that stresses a parser: entities, depth, size. */
const XML_SNIPPETS = [
  '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>',
  '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
  `${'<a>'.repeat(2000)}${'</a>'.repeat(2000)}`,
  '<participant participant_id="p"><nameID aor="sip:x@y"><name>n</name></nameID></participant>',
  '<participantstreamassoc participant_id="nobody"><send>nothing</send></participantstreamassoc>',
  '<stream stream_id="s"><label>1</label></stream>',
  '<![CDATA[</recording>]]>',
  '<?xml version="1.1"?>',
  '&lt;&#0;&#xFFFFFFFF;',
  '</recording>',
  '<recording xmlns="urn:ietf:params:xml:ns:recording:1">',
];

const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'UPDATE', 'INFO', 'REGISTER', 'invite', 'INV ITE', ''];

/** One text's lines, one of them changed by `edit`. */
function editLine(text: string, random: Random, edit: (line: string) => string): string {
  const lines = text.split('\r\n');
  const i = Math.floor(random() * lines.length);
  lines[i] = edit(lines[i]);
  return lines.join('\r\n');
}

type Headers = Array<[string, string]>;

/** Mutations of an INVITE's parts, before it is put together. */
const INVITE_MUTATIONS: Record<string, (parts: InviteParts, random: Random) => void> = {
  headerDropped(parts, random) {
    parts.headers.splice(Math.floor(random() * parts.headers.length), 1);
  },
  headerDuplicated(parts, random) {
    const header = pick(random, parts.headers);
    parts.headers.splice(between(random, 0, parts.headers.length), 0, [header[0], header[1]]);
  },
  headerValueOdd(parts, random) {
    const header = pick(random, parts.headers);
    header[1] = random() < 0.5 ? pick(random, ODD_TEXT) : splice(header[1], random);
  },
  headerNameOdd(parts, random) {
    const header = pick(random, parts.headers);
    header[0] = pick(random, [header[0].toUpperCase(), header[0].toLowerCase(), ` ${header[0]}`, `${header[0]} `, 'X']);
  },
  headerFolded(parts, random) {
    const header = pick(random, parts.headers);
    header[1] = header[1].replace(/ /, '\r\n\t');
  },
  contentLength(parts, random) {
    parts.headers.push(['Content-Length', pick(random, ['0', '1', '-1', '99999', '4294967297', 'abc', '', ' 12 '])]);
  },
  boundaryChanged(parts, random) {
    parts.boundary = pick(random, ['', ' ', 'x'.repeat(200), 'foo bar', '--', '"quoted"', 'other']);
  },
  boundaryTruncated(parts, random) {
    // The body keeps the old boundary; the Content-Type names another.
    parts.headers.push(['Content-Type', `multipart/mixed;boundary=${splice(parts.boundary, random)}`]);
  },
  sdpLine(parts, random) {
    parts.sdp = editLine(parts.sdp, random, (line) =>
      random() < 0.5 ? pick(random, SDP_LINES) : splice(line, random),
    );
  },
  sdpManyStreams(parts, random) {
    parts.sdp += Array.from(
      { length: between(random, 3, 200) },
      (_, i) => `m=audio ${49180 + 2 * i} RTP/AVP 0\r\na=label:${i + 3}\r\na=sendonly\r\n`,
    ).join('');
  },
  sdpAsMetadata(parts) {
    [parts.sdp, parts.metadata] = [parts.metadata, parts.sdp];
  },
  metadataSpliced(parts, random) {
    parts.metadata = editLine(parts.metadata, random, (line) => splice(line, random));
  },
  metadataXml(parts, random) {
    const at = between(random, 0, parts.metadata.length);
    parts.metadata = parts.metadata.slice(0, at) + pick(random, XML_SNIPPETS) + parts.metadata.slice(at);
  },
  metadataReplaced(parts, random) {
    parts.metadata = pick(random, XML_SNIPPETS);
  },
  requestUri(parts, random) {
    parts.requestUri = pick(random, [
      'sip:',
      'sip:@127.0.0.1',
      'sips:fuzz-target@127.0.0.1',
      'tel:+15551234567',
      'sip:%00@127.0.0.1',
      'sip:fuzz-target@127.0.0.1;transport=tls',
      `sip:${'a'.repeat(300)}@127.0.0.1`,
      'sip:../../etc@127.0.0.1',
      '*',
    ]);
  },
};

/** Mutations of a whole message's bytes. */
const BYTE_MUTATIONS: Record<string, (message: Buffer, random: Random) => Buffer> = {
  byteFlip(message, random) {
    const bytes = Buffer.from(message);
    for (let n = between(random, 1, 8); n > 0 && bytes.length > 0; n--)
      bytes[Math.floor(random() * bytes.length)] ^= 1 << between(random, 0, 7);
    return bytes;
  },
  truncated: (message, random) => message.subarray(0, Math.floor(random() * message.length)),
  lineEnds(message, random) {
    const text = message.toString('latin1');
    return Buffer.from(random() < 0.5 ? text.replace(/\r\n/g, '\n') : text.replace(/\r\n/, '\r\r\n'), 'latin1');
  },
  startLine(message, random) {
    const text = message.toString('latin1');
    const end = text.indexOf('\r\n');
    const [, uri = '', version = ''] = text.slice(0, end).split(' ');
    const line = pick(random, [
      `${pick(random, METHODS)} ${uri} ${version}`,
      `INVITE ${uri} SIP/3.0`,
      `INVITE ${uri}`,
      'SIP/2.0 200 OK',
      'SIP/2.0 99999 Odd',
      '',
    ]);
    return Buffer.from(line + text.slice(end), 'latin1');
  },
  nulInserted(message, random) {
    const at = Math.floor(random() * message.length);
    return Buffer.concat([message.subarray(0, at), Buffer.from([0]), message.subarray(at)]);
  },
  padded: (message, random) =>
    Buffer.concat([message, Buffer.alloc(pick(random, [1, 1000, 60_000]), pick(random, [0x20, 0x0a, 0x41]))]),
};

/** A mutated SIP request, and the mutations that made it. */
export interface SipMutation {
  names: string[];
  data: Buffer;
}

/**
 * A mutated request: from the SIPREC INVITE (its parts changed, then maybe its bytes) or from one
 * of `torture` (its bytes changed, or as it is: RFC 4475's invalid messages are hostile already).
 */
export function mutateSip(parts: InviteParts, torture: readonly Buffer[], random: Random): SipMutation {
  const names: string[] = [];
  let data: Buffer;
  if (random() < 0.3) {
    const i = Math.floor(random() * torture.length);
    names.push(`rfc4475[${i}]`);
    data = torture[i];
  } else {
    const copy: InviteParts = { ...parts, headers: parts.headers.map(([k, v]) => [k, v]) as Headers };
    for (let n = between(random, 1, 3); n > 0; n--) {
      const name = pick(random, Object.keys(INVITE_MUTATIONS));
      names.push(name);
      INVITE_MUTATIONS[name](copy, random);
    }
    data = inviteMessage(copy);
  }
  if (random() < 0.4) {
    const name = pick(random, Object.keys(BYTE_MUTATIONS));
    names.push(name);
    data = BYTE_MUTATIONS[name](data, random);
  }
  return { names, data };
}

/** An in-dialog request (re-INVITE, BYE, CANCEL, ACK, OPTIONS) with odd parts, for the dialog-matching paths. */
export function strayRequest(random: Random, target: string, headers: Headers): SipMutation {
  const method = pick(random, ['BYE', 'CANCEL', 'ACK', 'OPTIONS', 'INFO', 'PRACK']);
  const copy = headers.map(([k, v]) => [k, v]) as Headers;
  const cseq = copy.find(([k]) => k === 'CSeq');
  if (cseq) cseq[1] = `${pick(random, ['1', '2', '0', '4294967296', '-3'])} ${method}`;
  if (random() < 0.5) copy.push(['To', `<${target}>;tag=${pick(random, ['x', '', 'a'.repeat(100)])}`]);
  return { names: [`stray ${method}`], data: sipMessage(`${method} ${target} SIP/2.0`, copy) };
}

/** Mutations of one RTP packet (bytes of a valid one) into something the receiver must survive. */
const RTP_MUTATIONS: Record<string, (packet: Buffer, random: Random) => Buffer> = {
  version(packet, random) {
    packet[0] = (packet[0] & 0x3f) | (between(random, 0, 3) << 6);
    return packet;
  },
  csrcCount(packet, random) {
    packet[0] = (packet[0] & 0xf0) | between(random, 1, 15);
    return packet;
  },
  extension(packet, random) {
    packet[0] |= 0x10;
    if (packet.length >= 16) packet.writeUInt16BE(between(random, 0, 0xffff), 14);
    return packet;
  },
  padding(packet, random) {
    packet[0] |= 0x20;
    packet[packet.length - 1] = between(random, 0, 255);
    return packet;
  },
  payloadType(packet, random) {
    packet[1] = (packet[1] & 0x80) | pick(random, [8, 13, 18, 72, 73, 76, 96, 101, 127, between(random, 0, 127)]);
    return packet;
  },
  marker(packet) {
    packet[1] ^= 0x80;
    return packet;
  },
  sequenceJump(packet, random) {
    packet.writeUInt16BE(between(random, 0, 0xffff), 2);
    return packet;
  },
  timestampJump(packet, random) {
    packet.writeUInt32BE(pick(random, [0, 0xffffffff, 0x80000000, between(random, 0, 0xffffffff)]), 4);
    return packet;
  },
  ssrc(packet, random) {
    packet.writeUInt32BE(between(random, 0, 0xffffffff), 8);
    return packet;
  },
  truncated: (packet, random) => packet.subarray(0, between(random, 0, 12)),
  emptyPayload: (packet) => packet.subarray(0, 12),
  bigPayload: (packet, random) =>
    Buffer.concat([packet, Buffer.alloc(pick(random, [160, 1440, 1600, 8000, 60_000]), 0x7f)]),
  telephoneEvent(packet, random) {
    packet[1] = (packet[1] & 0x80) | 101;
    const event = Buffer.from([between(random, 0, 255), between(random, 0, 255), 0, between(random, 0, 255)]);
    return Buffer.concat([packet.subarray(0, 12), event.subarray(0, between(random, 0, 4))]);
  },
  rtcp(_packet, random) {
    // A sender report, receiver report or BYE (RFC 3550 §6.4), its length field odd now and then.
    const type = pick(random, [200, 201, 203, 204]);
    const rtcp = Buffer.alloc(pick(random, [4, 8, 28, 52]));
    rtcp[0] = 0x80 | between(random, 0, 31);
    rtcp[1] = type;
    if (rtcp.length >= 4) rtcp.writeUInt16BE(random() < 0.5 ? rtcp.length / 4 - 1 : between(random, 0, 0xffff), 2);
    return rtcp;
  },
  garbage: (_packet, random) =>
    Buffer.from(Array.from({ length: between(random, 0, 200) }, () => between(random, 0, 255))),
};

/**
 * A burst of RTP for one stream: `count` valid 20 ms PCMU packets in order (the audio of
 * `payload(i)`), some of them mutated, duplicated, reordered or left out.
 */
export function mutateRtp(
  count: number,
  ssrc: number,
  payload: (i: number) => Buffer,
  random: Random,
): { names: string[]; packets: Buffer[] } {
  const names = new Set<string>();
  const seq0 = between(random, 0, 0xffff);
  const ts0 = between(random, 0, 0xffffffff);
  let packets: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let packet = rtpPacket(seq0 + i, ts0 + i * 160, ssrc, payload(i));
    if (random() < 0.15) {
      const name = pick(random, Object.keys(RTP_MUTATIONS));
      names.add(name);
      packet = RTP_MUTATIONS[name](packet, random);
    }
    packets.push(packet);
  }
  if (random() < 0.3) {
    names.add('shuffled');
    packets = packets
      .map((p) => [random(), p] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, p]) => p);
  }
  if (random() < 0.2) {
    names.add('duplicated');
    packets = packets.flatMap((p) => (random() < 0.2 ? [p, p] : [p]));
  }
  if (random() < 0.2) {
    names.add('dropped');
    packets = packets.filter(() => random() >= 0.2);
  }
  return { names: [...names], packets };
}
