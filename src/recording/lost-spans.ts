import type { LostSpan } from '../store/index.js';

/**
 * Most spans a recording lists: a stream dropping a frame every second for hours would
 * otherwise grow its row (and the call's memory) without bound. Past it, the last span is
 * stretched to cover the new one, so the list still covers every loss, only more coarsely.
 */
export const MAX_LOST_SPANS = 100;

/** Why audio is missing, as `lost_spans[].reason` says it. */
export const LOST = {
  writeFailed: 'spool write failed',
  queueFull: 'spool write queue full',
  lateFrames: 'frames arrived too late',
  aheadOfWallClock: 'frames ran ahead of the wall clock',
  nodeLost: 'media node lost',
  discarded: 'discarded by the platform',
  sessionExpired: 'SIP session expired without a refresh',
} as const;

/**
 * Adds `[start, end)` (ms) to `spans`, kept in order of `start`: merged into the last span when
 * it touches it for the same reason, and merged into the last span whatever the reason once
 * `MAX_LOST_SPANS` are listed. Returns `spans`.
 */
export function addLostSpan(spans: LostSpan[], start: number, end: number, reason: string): LostSpan[] {
  const last = spans.at(-1);
  if (last && (spans.length >= MAX_LOST_SPANS || (last.reason === reason && start <= last.end_ms))) {
    last.start_ms = Math.min(last.start_ms, start);
    last.end_ms = Math.max(last.end_ms, end);
    return spans;
  }
  spans.push({ start_ms: start, end_ms: end, reason });
  return spans;
}

/** One list of the spans of several sources (each in order or not), sorted and merged as `addLostSpan` does. */
export function mergeLostSpans(...lists: readonly LostSpan[][]): LostSpan[] {
  const all = lists.flat().sort((a, b) => a.start_ms - b.start_ms);
  return all.reduce<LostSpan[]>((spans, s) => addLostSpan(spans, s.start_ms, s.end_ms, s.reason), []);
}
