import { createCipheriv, createHmac } from 'node:crypto';

/**
 * The sending half of SRTP (RFC 3711) for tests, written apart from src/sip/srtp.ts (a fresh
 * AES-128-CTR cipher per packet, its own IV arithmetic) so a round trip checks one against the
 * other: `protect` encrypts an RTP packet (12-byte header, no CSRC or extension) and appends the
 * 80- or 32-bit HMAC-SHA1 tag.
 */
export class SrtpProtector {
  readonly #key: Buffer;
  readonly #salt: Buffer;
  readonly #auth: Buffer;
  readonly #tagBytes: number;
  readonly #rtcp: { key: Buffer; auth: Buffer; salt: Buffer };

  /** `material`: the 30 bytes of an `a=crypto` inline key (master key || master salt). */
  constructor(material: Buffer, tagBits: 80 | 32 = 80) {
    const master = material.subarray(0, 16);
    const kdf = (label: number, length: number) => {
      const x = Buffer.concat([material.subarray(16, 30), Buffer.alloc(2)]);
      x[7] ^= label;
      return createCipheriv('aes-128-ctr', master, x).update(Buffer.alloc(length));
    };
    this.#key = kdf(0, 16);
    this.#auth = kdf(1, 20);
    this.#salt = kdf(2, 14);
    this.#tagBytes = tagBits / 8;
    this.#rtcp = { key: kdf(3, 16), auth: kdf(4, 20), salt: kdf(5, 14) };
  }

  /** The SRTCP packet (RFC 3711 §3.4) of a compound RTCP packet: encrypted after its first 8 bytes, E = 1, `index`, tag. */
  protectRtcp(rtcp: Buffer, index: number): Buffer {
    const iv = Buffer.concat([this.#rtcp.salt, Buffer.alloc(2)]);
    const mix = Buffer.alloc(16);
    mix.writeUInt32BE(rtcp.readUInt32BE(4), 4);
    mix.writeUInt32BE(index, 10);
    for (let i = 0; i < 16; i++) iv[i] ^= mix[i];
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE((0x8000_0000 | index) >>> 0);
    const out = Buffer.concat([
      rtcp.subarray(0, 8),
      createCipheriv('aes-128-ctr', this.#rtcp.key, iv).update(rtcp.subarray(8)),
      trailer,
    ]);
    return Buffer.concat([out, createHmac('sha1', this.#rtcp.auth).update(out).digest().subarray(0, this.#tagBytes)]);
  }

  /** The SRTP packet of `rtp`, whose index is `roc` · 2^16 + its sequence number. */
  protect(rtp: Buffer, roc: number): Buffer {
    const ssrc = rtp.readUInt32BE(8);
    const index = BigInt(roc) * 65536n + BigInt(rtp.readUInt16BE(2));
    const iv = Buffer.concat([this.#salt, Buffer.alloc(2)]);
    const mix = Buffer.alloc(16);
    mix.writeBigUInt64BE((BigInt(ssrc) << 16n) | (index >> 32n), 2);
    mix.writeUInt32BE(Number(index & 0xffffffffn), 10);
    for (let i = 0; i < 16; i++) iv[i] ^= mix[i];
    const payload = createCipheriv('aes-128-ctr', this.#key, iv).update(rtp.subarray(12));
    const out = Buffer.concat([rtp.subarray(0, 12), payload]);
    const rocBytes = Buffer.alloc(4);
    rocBytes.writeUInt32BE(roc);
    const tag = createHmac('sha1', this.#auth).update(out).update(rocBytes).digest().subarray(0, this.#tagBytes);
    return Buffer.concat([out, tag]);
  }
}
