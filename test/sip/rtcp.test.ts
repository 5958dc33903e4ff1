import { isRtcp, MAX_CORRECTION_MS, parseSenderReports, SenderReportAligner } from '../../src/sip/rtcp.js';
import { RtpTimeline } from '../../src/sip/rtp.js';
import { senderReport } from '../helpers/rtcp.js';

const NTP = 3_900_000_000.25;

test('RTCP: the sender reports of a compound packet; RTP and garbage hold none', () => {
  const compound = senderReport(0xdeadbeef, NTP, 0xffff_ff00);
  expect(isRtcp(compound)).toBe(true);
  const [report, ...rest] = parseSenderReports(compound);
  expect(rest).toEqual([]);
  expect(report).toMatchObject({ ssrc: 0xdeadbeef, rtpTimestamp: 0xffff_ff00 });
  expect(report.ntpSeconds).toBeCloseTo(NTP, 6);
  const rtp = Buffer.alloc(172);
  rtp[0] = 0x80;
  expect(isRtcp(rtp)).toBe(false);
  expect(parseSenderReports(rtp)).toEqual([]);
  expect(parseSenderReports(compound.subarray(0, 20))).toEqual([]); // truncated
});

/** Where the NTP instant `ntp` lands on a stream whose sender report says (ntpRef, rtpRef). */
function positionOf(timeline: RtpTimeline, ssrc: number, ntp: number, ntpRef: number, rtpRef: number): number {
  const timestamp = (rtpRef + Math.round((ntp - ntpRef) * timeline.clockRate)) >>> 0;
  return timeline.position(ssrc, timestamp, 0, 0);
}

test('two streams whose first packets arrive 120 ms apart, but whose reports say they started together, are aligned: the early one is delayed, nothing moves earlier', () => {
  const aligner = new SenderReportAligner();
  const caller = new RtpTimeline(8000);
  const agent = new RtpTimeline(48000);
  // First packets: the caller's at 0 ms (timestamp 1000), the agent's 120 ms later (timestamp 7).
  caller.position(1, 1000, 0, 160);
  expect(aligner.started(caller)).toBe(0);
  agent.position(2, 7, 120, 960);
  expect(aligner.started(agent)).toBe(0);
  // Their reports: both first packets were sampled at NTP instant T.
  expect(aligner.report(caller, parseSenderReports(senderReport(1, NTP, 1000))[0])).toBe(0);
  const correction = aligner.report(agent, parseSenderReports(senderReport(2, NTP, 7))[0]);
  expect(correction).toBeCloseTo(-120, 6); // the others (the caller) delayed by 120 ms
  // One NTP instant, 2.5 s on: the same position on both.
  const at = NTP + 2.5;
  expect(positionOf(caller, 1, at, NTP, 1000)).toBeCloseTo(120 + 2500, 6);
  expect(positionOf(agent, 2, at, NTP, 7)).toBeCloseTo(120 + 2500, 6);
  // A later report of the same SSRCs changes nothing.
  expect(aligner.report(agent, parseSenderReports(senderReport(2, NTP + 5, 7 + 5 * 48000))[0])).toBe(0);
});

test('a report before the stream’s first packet applies once it starts; a later stream is delayed to the reference', () => {
  const aligner = new SenderReportAligner();
  const a = new RtpTimeline(8000);
  const b = new RtpTimeline(8000);
  // b's report comes before its RTP: its timestamp 500 was sampled 40 ms after a's 0.
  a.position(10, 0, 0, 160);
  aligner.started(a);
  aligner.report(a, { ssrc: 10, ntpSeconds: NTP, rtpTimestamp: 0 });
  expect(aligner.report(b, { ssrc: 20, ntpSeconds: NTP + 0.04, rtpTimestamp: 500 })).toBe(0);
  // b's first packet (timestamp 500) arrives at 10 ms: it belongs at 40 ms.
  b.position(20, 500, 10, 160);
  expect(aligner.started(b)).toBeCloseTo(30, 6);
  expect(positionOf(a, 10, NTP + 1, NTP, 0)).toBeCloseTo(1000, 6);
  expect(positionOf(b, 20, NTP + 1, NTP + 0.04, 500)).toBeCloseTo(1000, 6);
});

test('reports whose clocks disagree by more than MAX_CORRECTION_MS align nothing; a new SSRC is aligned afresh', () => {
  const aligner = new SenderReportAligner();
  const a = new RtpTimeline(8000);
  const b = new RtpTimeline(8000);
  a.position(1, 0, 0, 160);
  b.position(2, 0, 0, 160);
  aligner.report(a, { ssrc: 1, ntpSeconds: NTP, rtpTimestamp: 0 });
  expect(aligner.report(b, { ssrc: 2, ntpSeconds: NTP + (MAX_CORRECTION_MS + 500) / 1000, rtpTimestamp: 0 })).toBe(0);
  expect(b.offsetMs).toBe(0);
  // b re-originates (SSRC 3) at 2000 ms, and its report now agrees with a's clock: 60 ms late.
  b.position(3, 90_000, 2000, 160);
  expect(aligner.started(b)).toBe(0);
  expect(aligner.report(b, { ssrc: 3, ntpSeconds: NTP + 2.06, rtpTimestamp: 90_000 })).toBeCloseTo(60, 6);
  expect(b.offsetMs).toBeCloseTo(2060, 6);
});
