import dgram from 'node:dgram';
import { parseRtp, parseTelephoneEvent, RtpLossCounter, RtpPorts, RtpTimeline } from '../../src/sip/rtp.js';
import { readMetadata } from '../../src/sip/metadata.js';

function packet(opts: {
  pt?: number;
  seq?: number;
  ts?: number;
  ssrc?: number;
  csrcs?: number;
  extension?: Buffer;
  padding?: number;
  payload?: Buffer;
}): Buffer {
  const csrcs = opts.csrcs ?? 0;
  const head = Buffer.alloc(12 + csrcs * 4);
  head[0] = 0x80 | (opts.extension ? 0x10 : 0) | (opts.padding ? 0x20 : 0) | csrcs;
  head[1] = opts.pt ?? 0;
  head.writeUInt16BE(opts.seq ?? 1, 2);
  head.writeUInt32BE(opts.ts ?? 0, 4);
  head.writeUInt32BE(opts.ssrc ?? 7, 8);
  const pad = opts.padding
    ? Buffer.concat([Buffer.alloc(opts.padding - 1), Buffer.from([opts.padding])])
    : Buffer.alloc(0);
  return Buffer.concat([head, opts.extension ?? Buffer.alloc(0), opts.payload ?? Buffer.from([1, 2, 3]), pad]);
}

test('RTP: CSRCs, a header extension and padding are skipped; RTCP and garbage are not RTP', () => {
  const ext = Buffer.from([0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
  expect(parseRtp(packet({ csrcs: 2, extension: ext, padding: 4, payload: Buffer.from([5, 6]) }))).toMatchObject({
    payloadType: 0,
    sequence: 1,
    ssrc: 7,
    payload: Buffer.from([5, 6]),
  });
  expect(parseRtp(packet({ pt: 0xc8 & 0x7f }).fill(0xc8, 1, 2))).toBeNull(); // RTCP SR
  expect(parseRtp(Buffer.from('not rtp at all'))).toBeNull();
  expect(parseRtp(packet({ csrcs: 15 }).subarray(0, 20))).toBeNull();
  expect(parseTelephoneEvent(Buffer.from([11, 0x80, 0, 160]))).toEqual({ digit: '#', end: true });
});

test('timeline: the 32-bit timestamp unwraps, a late packet before the wrap stays before it, a new SSRC continues the leg', () => {
  const t = new RtpTimeline(8000);
  expect(t.position(1, 0xffff_ff00, 0, 160)).toBe(0);
  expect(t.position(1, 0x40, 0, 160)).toBe(40); // 0xffffff00 + 320, wrapped
  expect(t.position(1, 0xffff_ffa0, 0, 160)).toBe(20); // late, from before the wrap
  expect(t.position(1, 0x40 + 160, 0, 160)).toBe(60);
  // The SRC re-originates the stream (new SSRC, random timestamps): it goes on where the old one ended.
  expect(t.position(2, 5, 10, 160)).toBe(80);
  expect(t.position(2, 5 + 160, 10, 160)).toBe(100);
  // Arriving later than the old audio's end, it starts at its arrival.
  expect(t.position(3, 999, 500, 160)).toBe(500);
});

test('metadata: participants with AORs and names, streams by label, from participantstreamassoc or the older send elements', () => {
  const assoc = readMetadata(`<?xml version="1.0"?><recording xmlns="urn:ietf:params:xml:ns:recording:1">
    <participant participant_id="p1"><nameID aor="sip:alice@example.com"><name xml:lang="en">Alice</name></nameID></participant>
    <participant participant_id="p2"><nameID aor="sip:bob@example.com"/></participant>
    <stream stream_id="s1" session_id="x"><label>10</label></stream><stream stream_id="s2" session_id="x"><label>11</label></stream>
    <participantstreamassoc participant_id="p2"><send>s2</send><recv>s1</recv></participantstreamassoc>
    <participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc></recording>`);
  expect(assoc.participants).toEqual([
    { id: 'p1', aor: 'sip:alice@example.com', name: 'Alice' },
    { id: 'p2', aor: 'sip:bob@example.com', name: '' },
  ]);
  expect(assoc.senderOf.get('10')).toBe('p1');
  expect(assoc.senderOf.get('11')).toBe('p2');
  const older = readMetadata(
    `<recording xmlns='urn:ietf:params:xml:ns:recording'><participant id="a"><aor>sip:a@x</aor><send>st</send></participant><stream id="st"><label>1</label></stream></recording>`,
  );
  expect(older.senderOf.get('1')).toBe('a');
  expect(() => readMetadata('<nothing/>')).toThrow(expect.objectContaining({ code: 'ERR_SIP_PARSE' }));
});

test('ports: RTP on an even port with RTCP on the one above; a pair with a port held elsewhere is skipped; closing RTP frees the pair', async () => {
  const first = 20_000 + 2 * Math.floor(Math.random() * 4_000);
  // Another process's socket on the first pair's RTCP port.
  const squatter = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(first + 1, '127.0.0.1', resolve));
  const ports = new RtpPorts({ first, last: first + 4 });
  expect(ports.available).toBe(2);
  const { rtp, rtcp } = await ports.open('127.0.0.1');
  expect([rtp.address().port, rtcp.address().port]).toEqual([first + 2, first + 3]);
  await expect(ports.open('127.0.0.1')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  squatter.close();
  const closed = new Promise((resolve) => rtcp.once('close', resolve));
  rtp.close();
  await closed;
  expect(ports.available).toBe(2);
  const again = await ports.open('127.0.0.1');
  again.rtp.close();
});

test('loss: gaps never filled are lost once; reordering, duplicates and the 16-bit wrap are not loss', () => {
  const loss = new RtpLossCounter();
  const feed = (ssrc: number, seqs: number[]) => seqs.reduce((sum, seq) => sum + loss.packet(ssrc, seq), 0);
  // Around the wrap: 65533 missing, 65535 and 0 swapped, 2 duplicated.
  let lost = feed(1, [65530, 65531, 65532, 65534, 0, 65535, 1, 2, 2, 3]);
  // Nothing is lost until the window (128 numbers) has passed the gap.
  expect(lost).toBe(0);
  lost += feed(
    1,
    Array.from({ length: 200 }, (_, i) => (4 + i) & 0xffff),
  );
  expect(lost).toBe(1);
  // 204 and 205 are lost when the stream settles; settling twice counts nothing more.
  lost += feed(1, [206]);
  expect(lost + loss.settle()).toBe(3);
  expect(loss.settle()).toBe(0);
  // A packet older than the window changes nothing; a jump past the window loses what it skipped,
  // those it passed at once, the rest as it settles.
  expect(feed(1, [10, 206 + 500])).toBe(499 - 127);
  expect(loss.settle()).toBe(127);
  // A new SSRC settles the old numbering (nothing missing) and starts afresh at any number.
  expect(feed(2, [40_000, 40_001])).toBe(0);
  // A jump past MAX_DROPOUT restarts the numbering rather than counting thousands lost.
  expect(feed(2, [60_000, 60_001]) + loss.settle()).toBe(0);
});
