/**
 * `callrec replay`: streams fixture captures at a callrec server as its providers would, many
 * calls at once, and reports how each call ended.
 */
import { randomBytes } from 'node:crypto';
import { SingleBar, Presets } from 'cli-progress';
import { CallrecError } from '../errors.js';
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
  /** Total calls (the files repeat in order); default one per file. */
  calls?: number;
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
  /** Closed with anything but 1000 (normal) or 1005 (no status). */
  failed: boolean;
}

export interface ReplaySummary {
  calls: ReplayCallOutcome[];
  failed: number;
  messages: number;
  durationMs: number;
}

const OK_CLOSE_CODES = new Set([1000, 1005]);
const PROVIDERS: readonly Provider[] = ['twilio', 'telnyx', 'vonage'];

/** `speed` option text → `ReplayOptions['speed']`; throws `ERR_BAD_ARGUMENT`. */
export function parseSpeed(value: string): ReplayOptions['speed'] {
  if (value === 'realtime' || value === 'max') return value;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CallrecError('ERR_BAD_ARGUMENT', `speed must be realtime, max or a positive multiplier, got "${value}"`);
  return n;
}

export function isProvider(value: string): value is Provider {
  return (PROVIDERS as readonly string[]).includes(value);
}

/** The endpoint URL for `provider`: a base gets `/media/<provider>`, a URL with a path is used as is. */
export function endpointUrl(url: string, provider: Provider): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CallrecError('ERR_BAD_ARGUMENT', `--url must be a ws:// or wss:// URL, got "${url}"`);
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') parsed.protocol = parsed.protocol === 'http:' ? 'ws:' : 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new CallrecError('ERR_BAD_ARGUMENT', `--url must be a ws:// or wss:// URL, got "${url}"`);
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = `/media/${provider}`;
  return parsed.toString();
}

function formatLine(c: ReplayCallOutcome): string {
  const reason = c.closeReason ? ` ${c.closeReason}` : '';
  return `${c.failed ? 'FAIL' : 'ok  '} ${c.callId}  ${c.file}  sent=${c.sent}  close=${c.closeCode}${reason}  ${(c.durationMs / 1000).toFixed(2)}s`;
}

/** Streams the calls, prints one line per call and a summary; resolves with the outcomes. */
export async function runReplay(opts: ReplayCommandOptions): Promise<ReplaySummary> {
  if (opts.files.length === 0) throw new CallrecError('ERR_BAD_ARGUMENT', 'no fixture files given');
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new CallrecError('ERR_BAD_ARGUMENT', '--concurrency must be a positive integer');
  const total = opts.calls ?? opts.files.length;
  if (!Number.isInteger(total) || total < 1) throw new CallrecError('ERR_BAD_ARGUMENT', '--calls must be a positive integer');
  const out = opts.out ?? process.stdout;

  // Each distinct file is read once, however often it repeats.
  const fixtures = new Map<string, Fixture>();
  for (const file of opts.files) if (!fixtures.has(file)) fixtures.set(file, await readFixture(file));

  const runId = randomBytes(4).toString('hex');
  const bar = opts.progress === null ? null : new SingleBar({ stream: opts.progress ?? process.stderr, format: 'replay [{bar}] {value}/{total} calls | {failed} failed | {eta_formatted} left', hideCursor: false }, Presets.shades_classic);
  bar?.start(total, 0, { failed: 0 });

  const outcomes: ReplayCallOutcome[] = new Array(total);
  let next = 0;
  let failed = 0;
  const started = performance.now();

  const replayOne = async (i: number): Promise<ReplayCallOutcome> => {
    const file = opts.files[i % opts.files.length];
    const fixture = fixtures.get(file)!;
    const callId = `replay-${runId}-${i + 1}`;
    const url = endpointUrl(opts.url, opts.provider ?? fixture.meta.provider);
    const callStarted = performance.now();
    try {
      const r = await replayFixture(fixture, { url, agentId: opts.agentId, token: opts.token, callId, speed: opts.speed });
      return { callId, file, sent: r.sent, closeCode: r.closeCode, closeReason: r.closeReason, durationMs: r.durationMs, failed: !OK_CLOSE_CODES.has(r.closeCode) };
    } catch (err) {
      // The connection was never opened (refused, 404, bad handshake): 1006 = closed abnormally.
      return { callId, file, sent: 0, closeCode: 1006, closeReason: (err as Error).message, durationMs: performance.now() - callStarted, failed: true };
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
      out.write(formatLine(outcome) + '\n');
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
  out.write(`${total} calls, ${total - failed} ok, ${failed} failed, ${summary.messages} messages sent in ${(summary.durationMs / 1000).toFixed(1)}s\n`);
  return summary;
}
