import dgram from 'node:dgram';
import { CallrecError } from '../errors.js';

/** The fields of an RTP packet (RFC 3550 §5.1) callrec uses; `payload` is a view into the datagram. */
export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/**
 * Where an RTP packet's payload starts (after CSRCs and header extension; it may lie past the
 * end of a bad packet); -1 for anything else (RTCP on the same port, STUN, garbage).
 */
export function rtpPayloadOffset(data: Buffer): number {
  if (data.length < 12 || data[0] >> 6 !== 2) return -1;
  const payloadType = data[1] & 0x7f;
  // RTCP (RFC 5761 §4): packet types 200-204 land on payload types 72-76 with the marker bit.
  if (payloadType >= 72 && payloadType <= 76) return -1;
  const offset = 12 + (data[0] & 0x0f) * 4;
  if (!(data[0] & 0x10)) return offset;
  if (data.length < offset + 4) return -1;
  return offset + 4 + data.readUInt16BE(offset + 2) * 4;
}

/** Parses an RTP packet; null for anything else (RTCP on the same port, STUN, garbage). */
export function parseRtp(data: Buffer): RtpPacket | null {
  const offset = rtpPayloadOffset(data);
  if (offset < 0) return null;
  const payloadType = data[1] & 0x7f;
  let end = data.length;
  if (data[0] & 0x20) end -= data[end - 1];
  if (end < offset) return null;
  return {
    payloadType,
    marker: (data[1] & 0x80) !== 0,
    sequence: data.readUInt16BE(2),
    timestamp: data.readUInt32BE(4),
    ssrc: data.readUInt32BE(8),
    payload: data.subarray(offset, end),
  };
}

/** An RFC 4733 telephone-event payload: the digit, and whether this packet ends the event. */
export function parseTelephoneEvent(payload: Buffer): { digit: string; end: boolean } | null {
  if (payload.length < 4) return null;
  const digit = '0123456789*#ABCD'[payload[0]];
  return digit === undefined ? null : { digit, end: (payload[1] & 0x80) !== 0 };
}

/** A stream's two sockets: RTP on an even port, RTCP on the port above (RFC 3550 §11). Closing `rtp` closes both. */
export interface RtpSockets {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
}

/**
 * The `RTP_PORTS` range: hands out even ports, each with the odd one above for RTCP, and takes
 * them back when a stream ends. A pair another process holds a port of is skipped.
 */
export class RtpPorts {
  readonly #free: number[] = [];

  constructor(range: { first: number; last: number }) {
    for (let port = range.first + (range.first % 2); port < range.last; port += 2) this.#free.push(port);
  }

  get available(): number {
    return this.#free.length;
  }

  /** Bound UDP sockets on a free pair of the range; rejects `ERR_UNAVAILABLE` when none is left. */
  async open(host: string): Promise<RtpSockets> {
    for (let tries = this.#free.length; tries > 0; tries--) {
      const port = this.#free.shift()!;
      const rtp = await bind(host, port);
      const rtcp = rtp && (await bind(host, port + 1));
      if (rtp && rtcp) {
        // The pair goes back once both are closed, whichever closes first.
        let open = 2;
        const release = () => {
          if (--open === 0) this.#free.push(port);
        };
        rtp.once('close', () => {
          release();
          try {
            rtcp.close();
          } catch {
            // closed already
          }
        });
        rtcp.once('close', release);
        return { rtp, rtcp };
      }
      rtp?.close();
      this.#free.push(port);
    }
    throw new CallrecError('ERR_UNAVAILABLE', 'no free port pair in RTP_PORTS');
  }
}

/** A UDP socket bound to `port`, or null when the port is taken. */
async function bind(host: string, port: number): Promise<dgram.Socket | null> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const bound = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => resolve(true));
  });
  if (bound) {
    socket.removeAllListeners('error');
    return socket;
  }
  socket.close();
  return null;
}

/**
 * Places one RTP stream's packets on the session's clock, in ms: `offsetMs` (when the stream's
 * first packet arrived, on the session's clock) plus its RTP timestamp since that packet, the
 * 32-bit timestamp unwrapped. A new SSRC (the SRC re-originated the stream) continues the
 * same leg from its arrival, or from where the old one's audio ended if that is later (a
 * stream sent ahead of real time must not overlap itself).
 */
export class RtpTimeline {
  readonly #rate: number;
  #ssrc = -1;
  #base = 0;
  #offsetMs = 0;
  /** Unwrapped timestamp of the latest packet, relative to `#base`. */
  #last = 0;
  /** Where the audio placed so far ends, ms. */
  #endMs = 0;

  constructor(clockRate: number) {
    this.#rate = clockRate;
  }

  get clockRate(): number {
    return this.#rate;
  }

  /** The SSRC being placed (-1 before the first packet), and the RTP timestamp its first packet had. */
  get ssrc(): number {
    return this.#ssrc;
  }

  get baseTimestamp(): number {
    return this.#base;
  }

  /** Where the base timestamp lands on the session's clock, ms. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Places the stream's packets from now on `ms` later (sender-report alignment, rtcp.ts); audio placed stays. */
  delay(ms: number): void {
    this.#offsetMs += ms;
  }

  /**
   * The packet's position in ms. `arrivalMs`: its arrival on the session's clock (used for a
   * new SSRC); `samples`: the audio it carries.
   */
  position(ssrc: number, timestamp: number, arrivalMs: number, samples: number): number {
    if (ssrc !== this.#ssrc) {
      this.#offsetMs = this.#ssrc === -1 ? arrivalMs : Math.max(arrivalMs, this.#endMs);
      this.#ssrc = ssrc;
      this.#base = timestamp;
      this.#last = 0;
    }
    // The signed 32-bit distance from the latest packet: a late packet before a wrap stays before it.
    const delta = ((timestamp - this.#base - this.#last) | 0) + this.#last;
    if (delta > this.#last) this.#last = delta;
    const positionMs = this.#offsetMs + (delta * 1000) / this.#rate;
    this.#endMs = Math.max(this.#endMs, positionMs + (samples * 1000) / this.#rate);
    return positionMs;
  }
}

/** Sequence numbers tracked behind the newest: far past the jitter window (300 ms, 15 packets of 20 ms). */
const LOSS_WINDOW = 128;
/** A jump in sequence numbers larger than this restarts the count (RFC 3550 A.1's MAX_DROPOUT). */
const MAX_DROPOUT = 3000;

/**
 * Counts one RTP stream's lost packets: sequence numbers never received. The last
 * `LOSS_WINDOW` numbers are tracked; one that leaves the window without its packet is lost (a
 * packet that old is past the jitter window anyway: its audio could not be placed). Reordered
 * packets and duplicates are not loss. A new SSRC, or a jump of more than `MAX_DROPOUT` (the
 * source restarted its numbering), settles the old numbering and starts a new one. Each call
 * costs at most one pass over the window, whatever the packet says.
 */
export class RtpLossCounter {
  readonly #received = new Uint8Array(LOSS_WINDOW);
  #ssrc = -1;
  /** Extended sequence number of the newest packet, and of the oldest counted (-1: none yet). */
  #highest = -1;
  #base = 0;

  /** A packet arrived; returns how many sequence numbers it shows lost. */
  packet(ssrc: number, sequence: number): number {
    if (ssrc !== this.#ssrc || this.#highest < 0) return this.#restart(ssrc, sequence);
    // The signed 16-bit distance from the newest: unwraps across 65535 → 0.
    const delta = ((sequence - this.#highest) << 16) >> 16;
    if (delta > MAX_DROPOUT || delta < -MAX_DROPOUT) return this.#restart(ssrc, sequence);
    const at = this.#highest + delta;
    if (delta <= 0) {
      if (-delta < LOSS_WINDOW) {
        this.#received[at & (LOSS_WINDOW - 1)] = 1;
        if (at < this.#base) this.#base = at;
      }
      return 0;
    }
    let lost = 0;
    if (delta >= LOSS_WINDOW) {
      // The whole window leaves, and the numbers between it and the new one were never seen.
      lost = this.settle() + delta - LOSS_WINDOW;
      this.#received.fill(0);
    } else {
      for (let n = this.#highest + 1; n <= at; n++) {
        const slot = n & (LOSS_WINDOW - 1);
        if (this.#received[slot] === 0 && n - LOSS_WINDOW >= this.#base) lost++;
        this.#received[slot] = 0;
      }
    }
    this.#received[at & (LOSS_WINDOW - 1)] = 1;
    this.#highest = at;
    return lost;
  }

  /** The numbers still missing in the window (the stream ended, or restarted): lost now. Counted once. */
  settle(): number {
    let lost = 0;
    for (let n = Math.max(this.#base, this.#highest - LOSS_WINDOW + 1); n <= this.#highest; n++)
      if (this.#received[n & (LOSS_WINDOW - 1)] === 0) lost++;
    this.#base = this.#highest + 1;
    return lost;
  }

  #restart(ssrc: number, sequence: number): number {
    const lost = this.#highest < 0 ? 0 : this.settle();
    this.#ssrc = ssrc;
    this.#received.fill(0);
    // Extended numbers keep the sequence number in their low 16 bits, and start a cycle up so
    // that reordered packets before the first stay positive.
    this.#highest = this.#base = 0x10000 + sequence;
    this.#received[this.#highest & (LOSS_WINDOW - 1)] = 1;
    return lost;
  }
}
