import type { RtpTimeline } from './rtp.js';

/** What an RTCP sender report (RFC 3550 §6.4.1) says: the sender's RTP timestamp at an NTP instant. */
export interface SenderReport {
  ssrc: number;
  /** The NTP timestamp, in seconds (since 1900; only differences matter). */
  ntpSeconds: number;
  rtpTimestamp: number;
}

const SR = 200;

/**
 * The sender reports in an RTCP compound packet (RFC 3550 §6.1), received on the RTP port + 1
 * or multiplexed on the RTP port (RFC 5761); empty for anything else.
 */
export function parseSenderReports(data: Buffer): SenderReport[] {
  const reports: SenderReport[] = [];
  for (let offset = 0; offset + 4 <= data.length; ) {
    if (data[offset] >> 6 !== 2) break;
    const type = data[offset + 1];
    const end = offset + 4 * (data.readUInt16BE(offset + 2) + 1);
    if (end > data.length) break;
    if (type === SR && end - offset >= 28)
      reports.push({
        ssrc: data.readUInt32BE(offset + 4),
        ntpSeconds: data.readUInt32BE(offset + 8) + data.readUInt32BE(offset + 12) / 2 ** 32,
        rtpTimestamp: data.readUInt32BE(offset + 16),
      });
    offset = end;
  }
  return reports;
}

/** Whether a datagram on an RTP port is RTCP (RFC 5761 §4: packet types 200-204 in the second byte). */
export function isRtcp(data: Buffer): boolean {
  return data.length >= 8 && data[0] >> 6 === 2 && data[1] >= 200 && data[1] <= 204;
}

/** A bigger correction than this says the streams' NTP clocks are not one clock: the stream is left as it is. */
export const MAX_CORRECTION_MS = 1000;

interface Aligned {
  timeline: RtpTimeline;
  /** The SSRC whose sender report placed it, and that report. */
  ssrc: number;
  report: SenderReport;
}

/**
 * Aligns the streams of one session by their sender reports: the same NTP instant lands at the
 * same position on every stream that has sent one. Without reports, streams stay aligned by
 * their first packets (RtpTimeline).
 *
 * The rule: a stream is aligned once per SSRC, on its first report, against the streams already
 * aligned (the first stream to report is the reference). Audio already placed is never moved
 * and a stream is never moved earlier: the correction moves whichever side started early
 * later by the difference (the new stream, or every aligned one), so the only effect on the
 * recording is that much silence on that side from the moment the report arrives. A correction
 * over MAX_CORRECTION_MS is not applied (the SRC's streams are not on one NTP clock).
 */
export class SenderReportAligner {
  readonly #aligned: Aligned[] = [];
  /** Latest report per stream not aligned yet (its first RTP packet may still be to come). */
  readonly #pending = new Map<RtpTimeline, SenderReport>();

  /**
   * A sender report for the stream `timeline` places. Returns the correction applied, ms (0: none
   * needed or none possible yet; the stream is aligned once its RTP has started).
   */
  report(timeline: RtpTimeline, report: SenderReport): number {
    const current = this.#aligned.find((a) => a.timeline === timeline);
    if (current && current.ssrc === report.ssrc) return 0;
    if (current) this.#aligned.splice(this.#aligned.indexOf(current), 1); // re-originated: align it afresh
    this.#pending.set(timeline, report);
    return this.#align(timeline);
  }

  /** A stream's first packet of an SSRC arrived: a report that came before it applies now. */
  started(timeline: RtpTimeline): number {
    const current = this.#aligned.find((a) => a.timeline === timeline);
    if (current && current.ssrc !== timeline.ssrc) this.#aligned.splice(this.#aligned.indexOf(current), 1);
    return this.#pending.has(timeline) ? this.#align(timeline) : 0;
  }

  #align(timeline: RtpTimeline): number {
    const report = this.#pending.get(timeline)!;
    if (timeline.ssrc !== report.ssrc) return 0;
    this.#pending.delete(timeline);
    const entry = { timeline, ssrc: report.ssrc, report };
    if (this.#aligned.length === 0) {
      this.#aligned.push(entry);
      return 0;
    }
    // Where the NTP instant `t` lands on stream X: X's clock zero + t − NTP(X's base timestamp).
    // Aligned when zero − NTP(base) is the same on every stream.
    const reference = this.#aligned[0];
    const correction = key(reference) - key(entry);
    if (Math.abs(correction) > MAX_CORRECTION_MS) return 0;
    if (correction > 0) timeline.delay(correction);
    else for (const a of this.#aligned) a.timeline.delay(-correction);
    this.#aligned.push(entry);
    return correction;
  }
}

/** A stream's offset minus the NTP time of its base timestamp, ms. */
function key({ timeline, report }: Aligned): number {
  const sinceBase = (report.rtpTimestamp - timeline.baseTimestamp) | 0;
  return timeline.offsetMs - (report.ntpSeconds - sinceBase / timeline.clockRate) * 1000;
}
