import { randomBytes } from 'node:crypto';
import { SipHeaders } from '../../src/sip/message.js';
import { answerSdp, readOffer } from '../../src/sip/offer.js';
import { AesCm, chooseCrypto, deriveSessionKeys, SrtpReceiver, type SdesCrypto } from '../../src/sip/srtp.js';
import { senderReport } from '../helpers/rtcp.js';
import { SrtpProtector } from '../helpers/srtp.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('RFC 3711 B.2: the AES-CM keystream of SSRC 0, index 0', () => {
  const cm = new AesCm(hex('2B7E151628AED2A6ABF7158809CF4F3C'), hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD'));
  const keystream = Buffer.alloc(0xff02 * 16);
  cm.xor(keystream, 0, 0);
  expect(keystream.subarray(0, 48)).toEqual(
    hex('E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0'),
  );
  expect(keystream.subarray(0xfeff * 16)).toEqual(
    hex('EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44'),
  );
});

test('RFC 3711 B.3: session keys from a master key and salt', () => {
  const keys = deriveSessionKeys(hex('E1F97A0D3E018BE0D64FA32C06DE4139'), hex('0EC675AD498AFEEBB6960B3AABE6'));
  expect(keys.encryption).toEqual(hex('C61E7A93744F39EE10734AFE3FF7A087'));
  expect(keys.salt).toEqual(hex('30CBBC08863D8C85D49DB34A9AE1'));
  expect(keys.auth).toEqual(hex('CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4'));
});

const MASTER = hex('E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6');
const crypto = (suite: SdesCrypto['suite'], material = MASTER): SdesCrypto => ({
  tag: 1,
  suite,
  key: material.subarray(0, 16),
  salt: material.subarray(16),
  mkiBytes: 0,
});

test("libsrtp's reference packet (SSRC 0xcafebabe, SEQ 0x1234) decrypts under both tag lengths; a flipped bit is dropped and counted", () => {
  const plain = hex('800F1234DECAFBADCAFEBABE ABABABABABABABABABABABABABABABAB');
  const protectedPacket = hex('800F1234DECAFBADCAFEBABE 4E55DC4CE79978D88CA4D215949D2402 B78D6ACC99EA179B8DBB');
  expect(new SrtpReceiver(crypto('AES_CM_128_HMAC_SHA1_80')).unprotect(Buffer.from(protectedPacket))).toEqual(plain);
  expect(
    new SrtpReceiver(crypto('AES_CM_128_HMAC_SHA1_32')).unprotect(Buffer.from(protectedPacket.subarray(0, 32))),
  ).toEqual(plain);
  const receiver = new SrtpReceiver(crypto('AES_CM_128_HMAC_SHA1_80'));
  const tampered = Buffer.from(protectedPacket);
  tampered[20] ^= 1;
  expect(receiver.unprotect(tampered)).toBeNull();
  expect(receiver.authFailures).toBe(1);
  // Not decrypted in place: the genuine packet still passes after the forged one.
  expect(receiver.unprotect(Buffer.from(protectedPacket))).toEqual(plain);
});

test("libsrtp's reference SRTCP packet (SSRC 0xcafebabe, index 1, E set) decrypts; a flipped bit, a replay and a truncated one are dropped", () => {
  const plain = hex('81C8000BCAFEBABE ABABABABABABABABABABABABABABABAB');
  const wire = hex('81C8000BCAFEBABE 7128035BE487B9BDBEF89041F977A5A8 80000001 993E08CD54D6C1230798');
  const receiver = new SrtpReceiver(crypto('AES_CM_128_HMAC_SHA1_80'));
  const tampered = Buffer.from(wire);
  tampered[12] ^= 1;
  expect(receiver.unprotectRtcp(tampered)).toBeNull();
  expect(receiver.unprotectRtcp(Buffer.from(wire.subarray(0, 20)))).toBeNull();
  expect(receiver.unprotectRtcp(Buffer.from(wire))).toEqual(plain);
  expect(receiver.unprotectRtcp(Buffer.from(wire))).toBeNull();
  expect(receiver.rtcpDropped).toBe(3);
  // SRTP's packets are not SRTCP's: the two key sets differ.
  expect(receiver.authFailures).toBe(0);
});

test.each([80, 32] as const)(
  'SRTCP round trip (%i-bit tag): indexes in order and reordered, a replay dropped',
  (bits) => {
    const material = randomBytes(30);
    const sender = new SrtpProtector(material, bits);
    const receiver = new SrtpReceiver(
      crypto(bits === 80 ? 'AES_CM_128_HMAC_SHA1_80' : 'AES_CM_128_HMAC_SHA1_32', material),
    );
    const sent = [5, 7, 6, 8].map((index) => {
      const clear = senderReport(0x1234, 3_900_000_000 + index, index * 8000);
      return { clear, wire: sender.protectRtcp(clear, index) };
    });
    for (const { clear, wire } of sent) expect(receiver.unprotectRtcp(Buffer.from(wire))).toEqual(clear);
    expect(receiver.unprotectRtcp(Buffer.from(sent[2].wire))).toBeNull();
    // Under SRTP's keys it is not taken as RTP either.
    expect(receiver.unprotect(Buffer.from(sent[0].wire))).toBeNull();
    expect(receiver.rtcpDropped).toBe(1);
  },
);

function rtp(seq: number, ssrc: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(seq * 160, 4);
  header.writeUInt32BE(ssrc, 8);
  return Buffer.concat([header, payload]);
}

test.each([80, 32] as const)(
  'round trip (%i-bit tag) through a sequence wrap, reordered, with replays and too-old packets dropped',
  (bits) => {
    const material = randomBytes(30);
    const sender = new SrtpProtector(material, bits);
    const receiver = new SrtpReceiver(
      crypto(bits === 80 ? 'AES_CM_128_HMAC_SHA1_80' : 'AES_CM_128_HMAC_SHA1_32', material),
    );
    // Unwrapped indexes from 65_500 across the wrap at 65_536 (ROC 0 → 1), a pair swapped across it.
    const indexes = Array.from({ length: 200 }, (_, i) => 65_500 + i);
    [indexes[35], indexes[36]] = [indexes[36], indexes[35]];
    const sent = indexes.map((index) => {
      const clear = rtp(index, 0x1234, randomBytes(160));
      return { clear, wire: sender.protect(clear, Math.floor(index / 65536)) };
    });
    for (const { clear, wire } of sent) expect(receiver.unprotect(Buffer.from(wire))).toEqual(clear);
    // A replay within the window, and one far behind it, are both dropped, not decrypted.
    expect(receiver.unprotect(Buffer.from(sent[190].wire))).toBeNull();
    expect(receiver.unprotect(Buffer.from(sent[2].wire))).toBeNull();
    expect(receiver.replays).toBe(2);
    expect(receiver.authFailures).toBe(0);
    // A second SSRC on the stream (re-originated) has a rollover counter of its own, from 0.
    const other = rtp(7, 0xbeef, randomBytes(160));
    expect(receiver.unprotect(sender.protect(other, 0))).toEqual(other);
    // A packet of the wrong key fails authentication.
    expect(
      receiver.unprotect(new SrtpProtector(randomBytes(30), bits).protect(rtp(65_700, 0x1234, randomBytes(160)), 1)),
    ).toBeNull();
    expect(receiver.authFailures).toBe(1);
  },
);

test('a=crypto: the first supported line with one inline key is chosen; session parameters, other suites and bad keys are passed over', () => {
  const key = randomBytes(30).toString('base64');
  expect(
    chooseCrypto([
      { id: 1, suite: 'AEAD_AES_256_GCM', config: `inline:${key}` },
      { id: 2, suite: 'AES_CM_128_HMAC_SHA1_80', config: `inline:${key}`, sessionConfig: 'KDR=10' },
      { id: 3, suite: 'AES_CM_128_HMAC_SHA1_80', config: 'inline:c2hvcnQ=' },
      { id: 4, suite: 'AES_CM_128_HMAC_SHA1_32', config: `inline:${key}|2^20|1:4` },
    ]),
  ).toEqual({
    tag: 4,
    suite: 'AES_CM_128_HMAC_SHA1_32',
    key: Buffer.from(key, 'base64').subarray(0, 16),
    salt: Buffer.from(key, 'base64').subarray(16),
    mkiBytes: 4,
  });
  expect(chooseCrypto([{ id: 1, suite: 'F8_128_HMAC_SHA1_80', config: `inline:${key}` }])).toBeNull();
});

const sdpHeaders = () => {
  const headers = new SipHeaders();
  headers.add('content-type', 'application/sdp');
  return headers;
};
const offerSdp = (...media: string[]) =>
  Buffer.from(
    [
      'v=0',
      'o=SRC 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      ...media.flatMap((m) => m.split('\n')),
      '',
    ].join('\r\n'),
  );

test('an RTP/SAVP offer is answered RTP/SAVP with the chosen suite, the same tag and a fresh key; plain RTP/AVP is answered without crypto', () => {
  const key = randomBytes(30).toString('base64');
  const offer = readOffer(
    sdpHeaders(),
    offerSdp(
      `m=audio 4000 RTP/SAVP 0\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${key}\na=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:${key}\na=label:1\na=sendonly`,
      'm=audio 4002 RTP/AVP 0\na=label:2\na=sendonly',
    ),
  );
  expect(offer.streams.map((s) => s.srtp?.tag ?? null)).toEqual([7, null]);
  const answer = answerSdp(
    offer,
    '127.0.0.1',
    new Map([
      [0, 5000],
      [1, 5002],
    ]),
    1,
  );
  const crypto = /^a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/]{40})\r$/m.exec(answer);
  expect(crypto).not.toBeNull();
  expect(Buffer.from(crypto![1], 'base64')).toHaveLength(30);
  expect(crypto![1]).not.toBe(key);
  expect(answer).toMatch(/^m=audio 5000 RTP\/SAVP 0\r$/m);
  expect(answer).toMatch(/^m=audio 5002 RTP\/AVP 0\r$/m);
  expect(answer.match(/a=crypto/g)).toHaveLength(1);
});

test('an offer whose SAVP streams carry no usable crypto is 488 naming why', () => {
  for (const media of [
    'm=audio 4000 RTP/SAVP 0\na=sendonly',
    `m=audio 4000 RTP/SAVP 0\na=crypto:1 AEAD_AES_128_GCM inline:${randomBytes(28).toString('base64')}\na=sendonly`,
  ]) {
    let error: unknown;
    try {
      readOffer(sdpHeaders(), offerSdp(media));
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'ERR_SIP_NOT_ACCEPTABLE' });
    expect((error as Error).message).toMatch(/SRTP.*AES_CM_128_HMAC_SHA1_80/);
  }
});
