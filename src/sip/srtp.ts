import { type Cipher, createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { rtpPayloadOffset } from './rtp.js';

/*
 * SRTP receive side (RFC 3711) for keys agreed by SDES (RFC 4568). Written here rather than taken
 * from werift-rtp (the maintained TypeScript SRTP, one part of a WebRTC stack): callrec needs only
 * the receiving half of the two AES-CM suites every SBC offers, which is this much code on
 * node:crypto, checked against the RFC's Appendix B vectors (test/sip/srtp.test.ts); and it keeps
 * the per-stream cipher and keys cached and a per-SSRC replay window, with nothing else per packet
 * than the keystream and the HMAC Node's API allocates.
 */

/** The SDES crypto suites callrec accepts, with their authentication tag lengths in bytes. */
const TAG_BYTES = { AES_CM_128_HMAC_SHA1_80: 10, AES_CM_128_HMAC_SHA1_32: 4 } as const;
export type SrtpSuite = keyof typeof TAG_BYTES;
export const SRTP_SUITES = Object.keys(TAG_BYTES) as SrtpSuite[];

/** One `a=crypto` line of the offer callrec can use. */
export interface SdesCrypto {
  /** The line's tag: the answer's line carries the same. */
  tag: number;
  suite: SrtpSuite;
  /** The SRC's master key (16 bytes) and master salt (14 bytes). */
  key: Buffer;
  salt: Buffer;
  /** Bytes of MKI each packet carries before its tag (0: none). */
  mkiBytes: number;
}

/** An `a=crypto` line as sdp-transform parses it. */
export interface CryptoLine {
  id: number;
  suite: string;
  config: string;
  sessionConfig?: string;
}

/**
 * The first offered `a=crypto` line callrec can use: a supported suite, one `inline:` key of 30
 * bytes (key || salt), optional lifetime and MKI, no session parameters (KDR, UNENCRYPTED_SRTP…).
 * Null when there is none.
 */
export function chooseCrypto(lines: readonly CryptoLine[] | undefined): SdesCrypto | null {
  for (const line of lines ?? []) {
    if (!(line.suite in TAG_BYTES) || line.sessionConfig) continue;
    // One key parameter: inline:KEY||SALT[|LIFETIME][|MKI:LENGTH]
    const m = /^inline:([A-Za-z0-9+/]{40})(?:\|(?:2\^\d+|\d+))?(?:\|(\d+):(\d+))?$/.exec(line.config);
    if (!m) continue;
    const material = Buffer.from(m[1], 'base64');
    const mkiBytes = m[3] === undefined ? 0 : Number(m[3]);
    if (material.length !== 30 || mkiBytes > 128) continue;
    return {
      tag: line.id,
      suite: line.suite as SrtpSuite,
      key: material.subarray(0, 16),
      salt: material.subarray(16),
      mkiBytes,
    };
  }
  return null;
}

/** The answer's `a=crypto` line for an accepted offer line: its tag and suite, a fresh key of callrec's own. */
export function answerCrypto(offered: SdesCrypto): CryptoLine {
  return { id: offered.tag, suite: offered.suite, config: `inline:${randomBytes(30).toString('base64')}` };
}

/** Session keys of the SRTP half of a master key (RFC 3711 §4.3, key derivation rate 0). */
export interface SessionKeys {
  encryption: Buffer;
  salt: Buffer;
  auth: Buffer;
}

/**
 * Derives the session keys from a master key and salt, `r` = 0 (kdr 0): SRTP's (labels 0, 1, 2),
 * or with `rtcp` SRTCP's (labels 3, 4, 5; RFC 3711 §4.3.2).
 */
export function deriveSessionKeys(masterKey: Buffer, masterSalt: Buffer, rtcp = false): SessionKeys {
  const derive = (label: number, length: number) => {
    // x = (label || r) XOR master_salt, key_id right-aligned in the salt's 112 bits; IV = x · 2^16.
    const iv = Buffer.alloc(16);
    masterSalt.copy(iv, 0);
    iv[7] ^= label;
    return createCipheriv('aes-128-ctr', masterKey, iv).update(Buffer.alloc(length));
  };
  const base = rtcp ? 3 : 0;
  return { encryption: derive(base, 16), auth: derive(base + 1, 20), salt: derive(base + 2, 14) };
}

/**
 * AES in counter mode as SRTP uses it (RFC 3711 §4.1.1): counter blocks IV + j, IV =
 * (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16), encrypted by one cached ECB cipher.
 */
export class AesCm {
  readonly #ecb: Cipher;
  readonly #salt: Buffer;
  /** Counter blocks, grown to the largest payload seen (a datagram's at most). */
  #blocks = Buffer.alloc(1024);

  constructor(key: Buffer, salt: Buffer) {
    this.#ecb = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.#salt = salt;
  }

  /** XORs the keystream of packet `index` (48 bits) of `ssrc` into `data`, in place. */
  xor(data: Buffer, ssrc: number, index: number): void {
    const length = Math.ceil(data.length / 16) * 16;
    if (this.#blocks.length < length) this.#blocks = Buffer.alloc(length);
    const blocks = this.#blocks;
    this.#salt.copy(blocks, 0);
    blocks.writeUInt32BE((blocks.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    blocks.writeUInt16BE(blocks.readUInt16BE(8) ^ Math.floor(index / 2 ** 32), 8);
    blocks.writeUInt32BE((blocks.readUInt32BE(10) ^ index) >>> 0, 10);
    // The IV's low 16 bits are zero and a datagram holds fewer than 2^16 blocks: j never carries.
    for (let offset = 16, j = 1; offset < length; offset += 16, j++) {
      blocks.copy(blocks, offset, 0, 14);
      blocks.writeUInt16BE(j, offset + 14);
    }
    blocks.writeUInt16BE(0, 14);
    const keystream = this.#ecb.update(blocks.subarray(0, length));
    for (let i = 0; i < data.length; i++) data[i] ^= keystream[i];
  }
}

/** Packets this far behind the newest of their SSRC are too old to take (RFC 3711 §3.3.2 asks for at least 64). */
const REPLAY_WINDOW = 128;
/** SSRCs a stream keeps rollover and replay state for: a re-originated stream, and one before it. */
const MAX_SOURCES = 4;

/** One SSRC's rollover counter (as its highest index) and replay window. */
class SourceState {
  /** Highest packet index authenticated (ROC · 2^16 + SEQ). */
  highest: number;
  /** Each slot holds the last index taken that falls in it: index i was taken iff seen[i % W] === i. */
  readonly #seen = new Float64Array(REPLAY_WINDOW).fill(-1);

  constructor(index: number) {
    this.highest = index;
    this.take(index);
  }

  /** The packet index of sequence number `seq` (RFC 3711 §3.3.1); -1 before the stream's start. */
  estimate(seq: number): number {
    const roc = Math.floor(this.highest / 65536);
    const last = this.highest % 65536;
    let v = roc;
    if (last < 32768) {
      if (seq - last > 32768) v = roc - 1;
    } else if (last - 32768 > seq) v = roc + 1;
    return v < 0 ? -1 : v * 65536 + seq;
  }

  /** Whether `index` is neither too old nor already taken. */
  fresh(index: number): boolean {
    if (index > this.highest) return true;
    return this.highest - index < REPLAY_WINDOW && this.#seen[index % REPLAY_WINDOW] !== index;
  }

  take(index: number): void {
    this.#seen[index % REPLAY_WINDOW] = index;
    if (index > this.highest) this.highest = index;
  }
}

/**
 * The SRTP crypto context of one received stream: every SSRC on it shares the SDES master key;
 * each has its own rollover counter and replay window. `unprotect` authenticates and decrypts a
 * packet in place, or drops it (counted in `authFailures` / `replays`).
 */
export class SrtpReceiver {
  /** Packets dropped for a wrong authentication tag (or too short to carry one). */
  authFailures = 0;
  /** Packets dropped as replayed or older than the replay window. */
  replays = 0;
  /** SRTCP packets dropped for a wrong authentication tag, a replayed index or a bad length. */
  rtcpDropped = 0;
  readonly #cm: AesCm;
  /** SRTCP's own keys (RFC 3711 §3.4) and per-SSRC replay windows, on the SRTCP index. */
  readonly #rtcpCm: AesCm;
  readonly #rtcpAuth: Buffer;
  readonly #rtcpSources = new Map<number, SourceState>();
  /** The HMAC key: createHmac takes a Buffer faster than a KeyObject (13 µs against 17 in a micro-benchmark). */
  readonly #auth: Buffer;
  readonly #tagBytes: number;
  readonly #trailer: number;
  readonly #sources = new Map<number, SourceState>();
  readonly #roc = Buffer.alloc(4);

  constructor(crypto: SdesCrypto) {
    const keys = deriveSessionKeys(crypto.key, crypto.salt);
    this.#cm = new AesCm(keys.encryption, keys.salt);
    this.#auth = keys.auth;
    this.#tagBytes = TAG_BYTES[crypto.suite];
    this.#trailer = this.#tagBytes + crypto.mkiBytes;
    const rtcpKeys = deriveSessionKeys(crypto.key, crypto.salt, true);
    this.#rtcpCm = new AesCm(rtcpKeys.encryption, rtcpKeys.salt);
    this.#rtcpAuth = rtcpKeys.auth;
    // Both primitives run once now, at session set-up: a first use costs milliseconds (OpenSSL's
    // algorithm fetch), and the first packets' handling times are what align the streams.
    this.#cm.xor(Buffer.alloc(16), 0, 0);
    createHmac('sha1', this.#auth).update(this.#roc).digest();
  }

  /**
   * The RTP packet an SRTP packet protects, decrypted in place in `data` (a view of it without MKI
   * and tag); null when it is not SRTP (RTCP, STUN, garbage), fails authentication, or replays one.
   */
  unprotect(data: Buffer): Buffer | null {
    const end = data.length - this.#trailer;
    const offset = rtpPayloadOffset(data);
    if (offset < 0) return null;
    if (offset > end) {
      this.authFailures++;
      return null;
    }
    const ssrc = data.readUInt32BE(8);
    const seq = data.readUInt16BE(2);
    const source = this.#sources.get(ssrc);
    const index = source ? source.estimate(seq) : seq;
    if (index < 0 || (source && !source.fresh(index))) {
      this.replays++;
      return null;
    }
    this.#roc.writeUInt32BE(Math.floor(index / 65536) >>> 0);
    const tag = createHmac('sha1', this.#auth).update(data.subarray(0, end)).update(this.#roc).digest();
    if (!timingSafeEqual(tag.subarray(0, this.#tagBytes), data.subarray(data.length - this.#tagBytes))) {
      this.authFailures++;
      return null;
    }
    if (source) source.take(index);
    else {
      // Only an authenticated packet makes state: forged SSRCs cannot fill the map.
      this.#sources.set(ssrc, new SourceState(index));
      if (this.#sources.size > MAX_SOURCES) this.#sources.delete(this.#sources.keys().next().value!);
    }
    const packet = data.subarray(0, end);
    this.#cm.xor(packet.subarray(offset), ssrc, index);
    return packet;
  }

  /**
   * The compound RTCP packet an SRTCP packet protects (RFC 3711 §3.4), decrypted in place in `data`
   * (a view of it without the E flag and index, MKI and tag); null when it fails authentication
   * (over the packet and its E || SRTCP index word), replays an index of its SSRC, or is too old.
   * The first 8 bytes (header and sender SSRC) are in the clear; E = 0 leaves the rest so too.
   */
  unprotectRtcp(data: Buffer): Buffer | null {
    const end = data.length - this.#trailer;
    const indexAt = end - 4;
    if (indexAt < 8) {
      this.rtcpDropped++;
      return null;
    }
    const word = data.readUInt32BE(indexAt);
    const index = word & 0x7fffffff;
    const ssrc = data.readUInt32BE(4);
    const source = this.#rtcpSources.get(ssrc);
    if (source && !source.fresh(index)) {
      this.rtcpDropped++;
      return null;
    }
    const tag = createHmac('sha1', this.#rtcpAuth).update(data.subarray(0, end)).digest();
    if (!timingSafeEqual(tag.subarray(0, this.#tagBytes), data.subarray(data.length - this.#tagBytes))) {
      this.rtcpDropped++;
      return null;
    }
    if (source) source.take(index);
    else {
      this.#rtcpSources.set(ssrc, new SourceState(index));
      if (this.#rtcpSources.size > MAX_SOURCES) this.#rtcpSources.delete(this.#rtcpSources.keys().next().value!);
    }
    const packet = data.subarray(0, indexAt);
    if (word >>> 31) this.#rtcpCm.xor(packet.subarray(8), ssrc, index);
    return packet;
  }
}
