/**
 * `callrec replay`: streams fixture captures at a callrec server as its providers would, many
 * calls at once, and reports how each call ended.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar, Presets } from 'cli-progress';
import { parseUserUrl } from '../user-url.js';
import { CallrecError } from '../errors.js';
import { adapters } from '../protocols/index.js';
import type { Provider } from '../protocols/types.js';
import { replayFixture, type ReplayOptions } from './client.js';
import { readFixture, type Fixture } from './fixture.js';

export interface ReplayCommandOptions {
  files: string[];
  /** A `ws://host:port` base (the provider's endpoint is appended) or a full endpoint URL. */
  url: string;
  /** Endpoint to stream at; default: each fixture's own provider. */
  provider?: Provider;
  agentId?: string;
  token?: string;
  speed: ReplayOptions['speed'];
  /** Calls streaming at once. */
  concurrency: number;
  /** Total calls (the files repeat in order); default one per file, times `repeat`. */
  calls?: number;
  /** Each file is streamed this many times; default 1. */
  repeat?: number;
  /** Press this key after the consent prompt has played (two-party consent). */
  dtmf?: string;
  /** Wait for each call's recording and fail the call unless it becomes `ready`; default true.
   * Skipped (and said so) when the token may not read recordings. */
  checkRecording?: boolean;
  /** How long to wait for a recording to become ready after its call ends; default 120 s. */
  recordingTimeoutMs?: number;
  /** Progress bar stream; `null` for none. Default: stderr. */
  progress?: NodeJS.WritableStream | null;
  /** Where the per-call lines and the summary go. Default: stdout. */
  out?: NodeJS.WritableStream;
}

export interface ReplayCallOutcome {
  callId: string;
  file: string;
  sent: number;
  /** Close code; 1006 when the connection could not be opened. */
  closeCode: number;
  closeReason: string;
  durationMs: number;
  /** The recording's final status (`ready`, `failed`, `none`, …), `unchecked` when not checked, or why it could not be read. */
  recording: string;
  /** Closed with anything but 1000 (normal) or 1005 (no status), or a recording checked and not `ready`. */
  failed: boolean;
}

export interface ReplaySummary {
  calls: ReplayCallOutcome[];
  failed: number;
  messages: number;
  durationMs: number;
}

const OK_CLOSE_CODES = new Set([1000, 1005]);
/** Every provider endpoint a fixture can be streamed at. */
export const PROVIDERS: readonly Provider[] = Object.keys(adapters) as Provider[];

/** `speed` option text → `ReplayOptions['speed']`; throws `ERR_BAD_ARGUMENT`. */
export function parseSpeed(value: string): ReplayOptions['speed'] {
  if (value === 'realtime' || value === 'max') return value;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new CallrecError('ERR_BAD_ARGUMENT', `speed must be realtime, max or a positive multiplier, got "${value}"`);
  return n;
}

export function isProvider(value: string): value is Provider {
  return Object.hasOwn(adapters, value);
}

/** The endpoint URL for `provider`: a base gets `/media/<provider>`, a URL with a path is used as is. */
export function endpointUrl(url: string, provider: Provider): string {
  const parsed = parseUserUrl(url, 'ws');
  if (parsed && (parsed.protocol === 'http:' || parsed.protocol === 'https:'))
    parsed.protocol = parsed.protocol === 'http:' ? 'ws:' : 'wss:';
  if (!parsed || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
    throw new CallrecError(
      'ERR_BAD_ARGUMENT',
      `--url must be the server's address: host:port, or a ws://, wss://, http:// or https:// URL, got "${url}"`,
    );
  }
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = `/media/${provider}`;
  return parsed.toString();
}

function formatLine(c: ReplayCallOutcome): string {
  const reason = c.closeReason ? ` ${c.closeReason}` : '';
  return `${c.failed ? 'FAIL' : 'ok  '} ${c.callId}  ${c.file}  sent=${c.sent}  close=${c.closeCode}${reason}  recording=${c.recording}  ${(c.durationMs / 1000).toFixed(2)}s`;
}

/** The HTTP origin of the server behind a ws:// endpoint URL. */
function httpOrigin(endpoint: string): string {
  const url = new URL(endpoint);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url.origin;
}

/** Fails fast, with a clear message, when nothing answers at the server's address. */
async function checkServer(origin: string): Promise<void> {
  try {
    await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    const cause = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
    throw new CallrecError(
      'ERR_UNAVAILABLE',
      `cannot reach a callrec server at ${origin} (${cause}); is \`callrec serve\` running there?`,
    );
  }
}

/** Terminal recording states once the call has ended (`none`: nothing was recorded). */
const SETTLED = new Set(['ready', 'failed', 'deleted', 'none']);

/** Waits for the call's recording to settle: its status, or why it could not be read. */
async function recordingOutcome(origin: string, token: string, callId: string, timeoutMs: number): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${origin}/api/calls/${encodeURIComponent(callId)}`, {
      headers: { authorization: `Bearer ${token}` },
    }).catch((err: Error) => err);
    if (res instanceof Error) return `unreadable (${res.message})`;
    if (res.status === 403) return 'unchecked (the token may not read recordings)';
    // Many calls checked with one key meet the API's per-key rate limit: wait as it says.
    const retryAfterS = res.status === 429 ? Number(res.headers.get('retry-after')) || 1 : 0;
    if (res.ok) {
      const view = (await res.json()) as { status: string; recording_status: string };
      if (view.status === 'ended' && SETTLED.has(view.recording_status)) return view.recording_status;
    } else if (res.status !== 404 && res.status !== 429) {
      return `unreadable (HTTP ${res.status})`;
    }
    if (performance.now() > deadline) return 'timeout';
    await sleep(Math.max(500, retryAfterS * 1000));
  }
}

/** Streams the calls, prints one line per call and a summary; resolves with the outcomes. */
export async function runReplay(opts: ReplayCommandOptions): Promise<ReplaySummary> {
  if (opts.files.length === 0) throw new CallrecError('ERR_BAD_ARGUMENT', 'no fixture files given');
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new CallrecError('ERR_BAD_ARGUMENT', '--concurrency must be a positive integer');
  const repeat = opts.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new CallrecError('ERR_BAD_ARGUMENT', '--repeat must be a positive integer');
  if (opts.dtmf !== undefined && !/^[0-9*#]$/.test(opts.dtmf))
    throw new CallrecError('ERR_BAD_ARGUMENT', `--dtmf must be one key (0-9, * or #), got "${opts.dtmf}"`);
  const total = opts.calls ?? opts.files.length * repeat;
  if (!Number.isInteger(total) || total < 1)
    throw new CallrecError('ERR_BAD_ARGUMENT', '--calls must be a positive integer');
  const out = opts.out ?? process.stdout;

  // Each distinct file is read once, however often it repeats.
  const fixtures = new Map<string, Fixture>();
  for (const file of opts.files) if (!fixtures.has(file)) fixtures.set(file, await readFixture(file));
  const origin = httpOrigin(endpointUrl(opts.url, opts.provider ?? fixtures.get(opts.files[0])!.meta.provider));
  await checkServer(origin);
  const checkRecording = (opts.checkRecording ?? true) && opts.token !== undefined;

  const runId = randomBytes(4).toString('hex');
  const bar =
    opts.progress === null
      ? null
      : new SingleBar(
          {
            stream: opts.progress ?? process.stderr,
            format: 'replay [{bar}] {value}/{total} calls | {failed} failed | {eta_formatted} left',
            hideCursor: false,
          },
          Presets.shades_classic,
        );
  bar?.start(total, 0, { failed: 0 });

  const outcomes: ReplayCallOutcome[] = new Array(total);
  let next = 0;
  let failed = 0;
  const started = performance.now();

  const replayOne = async (i: number): Promise<ReplayCallOutcome> => {
    const file = opts.files[Math.floor(i / repeat) % opts.files.length];
    const fixture = fixtures.get(file)!;
    const callId = `replay-${runId}-${i + 1}`;
    const url = endpointUrl(opts.url, opts.provider ?? fixture.meta.provider);
    const callStarted = performance.now();
    try {
      const r = await replayFixture(fixture, {
        url,
        agentId: opts.agentId,
        token: opts.token,
        callId,
        speed: opts.speed,
        answerMarks: true,
        dtmf: opts.dtmf,
      });
      const closedOk = OK_CLOSE_CODES.has(r.closeCode);
      const recording =
        checkRecording && closedOk
          ? await recordingOutcome(origin, opts.token!, callId, opts.recordingTimeoutMs ?? 120_000)
          : 'unchecked';
      const recordingOk = recording === 'ready' || recording.startsWith('unchecked');
      return {
        callId,
        file,
        sent: r.sent,
        closeCode: r.closeCode,
        closeReason: r.closeReason,
        durationMs: r.durationMs,
        recording,
        failed: !closedOk || !recordingOk,
      };
    } catch (err) {
      // The connection was never opened (refused, 404, bad handshake): 1006 = closed abnormally.
      return {
        callId,
        file,
        sent: 0,
        closeCode: 1006,
        closeReason: (err as Error).message,
        durationMs: performance.now() - callStarted,
        recording: 'unchecked',
        failed: true,
      };
    }
  };

  const lane = async () => {
    while (next < total) {
      const i = next++;
      const outcome = await replayOne(i);
      outcomes[i] = outcome;
      if (outcome.failed) failed++;
      bar?.increment(1, { failed });
      // Lines go out as calls finish; the bar redraws itself below them.
      out.write(`${formatLine(outcome)}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, total) }, lane));
  bar?.stop();

  const summary: ReplaySummary = {
    calls: outcomes,
    failed,
    messages: outcomes.reduce((n, c) => n + c.sent, 0),
    durationMs: performance.now() - started,
  };
  out.write(
    `${total} calls, ${total - failed} ok, ${failed} failed, ${summary.messages} messages sent in ${(summary.durationMs / 1000).toFixed(1)}s\n`,
  );
  return summary;
}
