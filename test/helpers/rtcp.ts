/** An RTCP sender report (RFC 3550 §6.4.1) without report blocks, then an SDES with a CNAME: a compound packet as SRCs send it. */
export function senderReport(ssrc: number, ntpSeconds: number, rtpTimestamp: number): Buffer {
  const sr = Buffer.alloc(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(ssrc >>> 0, 4);
  sr.writeUInt32BE(Math.floor(ntpSeconds) >>> 0, 8);
  sr.writeUInt32BE(Math.round((ntpSeconds % 1) * 2 ** 32) >>> 0, 12);
  sr.writeUInt32BE(rtpTimestamp >>> 0, 16);
  const sdes = Buffer.from([0x81, 202, 0, 3, 0, 0, 0, 0, 1, 2, 0x61, 0x62, 0, 0, 0, 0]);
  sdes.writeUInt32BE(ssrc >>> 0, 4);
  return Buffer.concat([sr, sdes]);
}
