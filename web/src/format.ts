/** How the dashboard writes times and durations. */

export function formatTime(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** `m:ss` or `h:mm:ss`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A call's length: the recording's when there is one, else start to end (or to now while live). */
export function callDurationMs(call: {
  started_at: string;
  ended_at: string | null;
  recording: { duration_ms: number | null } | null;
}): number | null {
  if (call.recording?.duration_ms != null) return call.recording.duration_ms;
  const end = call.ended_at ? Date.parse(call.ended_at) : Date.now();
  return end - Date.parse(call.started_at);
}
