/**
 * Streams a fixture at a callrec provider endpoint the way the provider would: same messages,
 * same spacing (or as fast as the socket drains), with the stream's parameters filled in.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { Fixture, FixtureMessage } from './fixture.js';
import { ProviderPlayback } from './playback.js';
import { AUDIOHOOK_KEY_HEADER } from '../protocols/genesys.js';
import type { Provider } from '../protocols/types.js';

export interface ReplayOptions {
  /** Full ws URL of the provider endpoint, e.g. `ws://127.0.0.1:8080/media/twilio`. */
  url: string;
  agentId?: string;
  token?: string;
  callId?: string;
  /** `realtime` keeps the capture's spacing, a number divides it, `max` sends as fast as the socket drains. */
  speed: 'realtime' | 'max' | number;
  /** Extra upgrade request headers (e.g. Telnyx's `x-telnyx-streaming-auth-token`). */
  headers?: Record<string, string>;
  /** Every message the server sends back, as it arrives; `reply` answers on the same socket
   * (as a provider echoes a `mark` once it has played the audio before it). */
  onMessage?: (data: Buffer, binary: boolean, reply: (data: Buffer | string, binary: boolean) => void) => void;
  /**
   * Before each message of the fixture goes out: its stream time, and a way to send on the socket
   * first (a provider's own message due at a stream time, placed in the stream as the provider would).
   */
  onStreamTime?: (streamMs: number, send: (data: Buffer | string, binary: boolean) => void) => void;
  /** Keep the socket open this long after the last message before closing it (to collect replies). */
  closeAfterMs?: number;
  /** Play what the server sends back as the provider would, confirming each mark once the audio before it has played. */
  answerMarks?: boolean;
  /** With `answerMarks`: press this key (DTMF) half a second after the first mark is confirmed (the consent prompt has played). */
  dtmf?: string;
}

/** When the caller presses the `dtmf` key, after the prompt's mark (stream time). */
const DTMF_AFTER_PROMPT_MS = 500;

export interface ReplayResult {
  callId?: string;
  /** Messages sent. */
  sent: number;
  /** What the server sent back, `atMs` after the socket opened. */
  received: Array<{ atMs: number; data: Buffer; binary: boolean }>;
  closeCode: number;
  closeReason: string;
  durationMs: number;
  /** With `answerMarks`: stream time at which the first mark was confirmed; null if none was asked for or due. */
  firstMarkAtMs: number | null;
}

type Params = Record<string, string>;

/** `k=v;k=v` (Plivo's `extra_headers`) as an object. */
function pairs(text: unknown): Params {
  const params: Params = {};
  if (typeof text !== 'string') return params;
  for (const pair of text.split(/[;,]/)) {
    const at = pair.indexOf('=');
    if (at > 0) params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return params;
}

/** The start message's parameter object for each provider, which the placeholders live in. */
function paramsOf(provider: Provider, message: Record<string, unknown>): Params | undefined {
  if (provider === 'vonage') return message.event === 'websocket:connected' ? (message as Params) : undefined;
  if (provider === 'bandwidth')
    return message.eventType === 'start' ? ((message.streamParams ??= {}) as Params) : undefined;
  if (provider === 'freeswitch') return message as Params;
  if (provider === 'jambonz') return (message.metadata ??= {}) as Params;
  // AudioHook: the integration's Custom Config (the key goes in its X-API-KEY header instead).
  if (provider === 'genesys')
    return message.type === 'open'
      ? (((message.parameters as Record<string, unknown>).customConfig ??= {}) as Params)
      : undefined;
  if (message.event !== 'start') return undefined;
  if (provider === 'plivo') return pairs(message.extra_headers);
  const start = message.start as Record<string, unknown> | undefined;
  if (start === undefined) return undefined;
  const key = provider === 'twilio' || provider === 'signalwire' ? 'customParameters' : 'custom_parameters';
  return (start[key] ??= {}) as Params;
}

/** The fixture's start message with `agent_id`, `token` and `call_id` set (or the placeholders removed). */
export function rewriteStart(
  provider: Provider,
  text: string,
  opts: Pick<ReplayOptions, 'agentId' | 'token' | 'callId'>,
): string {
  if (PARAMS_IN_URL.has(provider)) return text;
  const message = JSON.parse(text) as Record<string, unknown>;
  const params = paramsOf(provider, message);
  if (params === undefined) return text;
  const set = (key: string, value: string | undefined) => {
    if (value === undefined) delete params[key];
    else params[key] = value;
  };
  if (opts.agentId !== undefined) params.agent_id = opts.agentId;
  if (provider !== 'genesys') set('token', opts.token);
  set('call_id', opts.callId);
  // Plivo carries them as text: written back in its own form.
  if (provider === 'plivo')
    message.extra_headers = Object.entries(params)
      .map(([key, value]) => `${key}=${value}`)
      .join(';');
  return JSON.stringify(message);
}

/** What only each provider's start message holds (jambonz and FreeSWITCH: the metadata's mix type). */
const START_MARKS: Record<Provider, string> = {
  twilio: '"event":"start"',
  telnyx: '"event":"start"',
  vonage: '"websocket:connected"',
  signalwire: '"event":"start"',
  plivo: '"event":"start"',
  exotel: '"event":"start"',
  bandwidth: '"eventType":"start"',
  genesys: '"type":"open"',
  jambonz: '"mixType"',
  freeswitch: '"mixType"',
  asterisk: 'MEDIA_START',
  azure: '"AudioMetadata"',
};

/** Platforms whose start carries no parameters of ours: they go on the URL (Asterisk's `v()`, ACS's transport URL). */
const PARAMS_IN_URL: ReadonlySet<Provider> = new Set(['asterisk', 'azure']);

/** Whether `message` is the stream's start (Vonage: `websocket:connected`), which carries the parameters. */
export function isStart(provider: Provider, message: FixtureMessage): boolean {
  return !message.binary && (message.data as string).includes(START_MARKS[provider]);
}

/** The stream's parameters a replay fills in. */
export type Credentials = Pick<ReplayOptions, 'agentId' | 'token' | 'callId'>;

export function paramsOnUrl(provider: Provider): boolean {
  return PARAMS_IN_URL.has(provider);
}

/** The endpoint URL with the stream's parameters on it, for platforms that carry them there. */
export function urlWithParams(provider: Provider, url: string, opts: Credentials): string {
  if (!PARAMS_IN_URL.has(provider)) return url;
  const out = new URL(url);
  for (const [key, value] of [
    ['agent_id', opts.agentId],
    ['token', opts.token],
    ['call_id', opts.callId],
  ])
    if (value !== undefined) out.searchParams.set(key!, value);
  return out.toString();
}

/**
 * Replays `fixture` against `opts.url`. Resolves once the socket has closed: after the last
 * message (closing with 1000, after `closeAfterMs`) or earlier if the server closes first.
 * Rejects only if the connection cannot be opened.
 */
export async function replayFixture(fixture: Fixture, opts: ReplayOptions): Promise<ReplayResult> {
  const provider = fixture.meta.provider;
  const divisor = opts.speed === 'realtime' ? 1 : opts.speed;
  const headers =
    provider === 'genesys' && opts.token !== undefined
      ? { ...opts.headers, [AUDIOHOOK_KEY_HEADER]: opts.token }
      : opts.headers;
  const ws = new WebSocket(urlWithParams(provider, opts.url, opts), { headers });
  const received: ReplayResult['received'] = [];
  let openedAt = performance.now();
  let closed = false;

  const closedPromise = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      closed = true;
      resolve({ code, reason: reason.toString() });
    });
  });
  const playback = opts.answerMarks ? new ProviderPlayback(fixture) : null;
  const firstT = fixture.messages[0]?.t ?? 0;
  /** Stream time: the send offset of the last message sent. */
  let streamMs = 0;
  ws.on('message', (data: Buffer, binary: boolean) => {
    received.push({ atMs: performance.now() - openedAt, data, binary });
    playback?.receive(data, binary, streamMs);
    opts.onMessage?.(data, binary, (reply, replyBinary) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(reply, { binary: replyBinary });
    });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // After open, socket errors end in 'close'; an unhandled 'error' would crash the process.
  ws.on('error', () => {});
  openedAt = performance.now();

  let sent = 0;
  let dtmfPressed = false;
  /** The provider's own messages due by `streamMs`: mark confirmations, then the caller's key press. */
  const sendDue = () => {
    if (!playback) return;
    for (const echo of playback.due(streamMs)) ws.send(echo);
    if (
      opts.dtmf &&
      !dtmfPressed &&
      playback.firstMarkAtMs !== null &&
      streamMs >= playback.firstMarkAtMs + DTMF_AFTER_PROMPT_MS
    ) {
      dtmfPressed = true;
      const press = playback.dtmf(opts.dtmf);
      if (press !== null) ws.send(press);
    }
  };
  for (const message of fixture.messages) {
    if (closed) break;
    if (divisor !== 'max') {
      // Wait against the absolute schedule so timer lateness does not accumulate.
      const due = openedAt + (message.t - firstT) / divisor;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    if (closed) break;
    streamMs = message.t - firstT;
    sendDue();
    opts.onStreamTime?.(streamMs, (data, binary) => ws.send(data, { binary }));
    const data = isStart(provider, message) ? rewriteStart(provider, message.data as string, opts) : message.data;
    const ok = await new Promise<boolean>((resolve) =>
      ws.send(data, { binary: message.binary }, (err) => resolve(!err)),
    );
    if (!ok) break;
    sent++;
  }
  if (!closed) {
    if (opts.closeAfterMs) await Promise.race([sleep(opts.closeAfterMs), closedPromise]);
    if (!closed) ws.close(1000);
  }
  const { code, reason } = await closedPromise;
  return {
    callId: opts.callId,
    sent,
    received,
    closeCode: code,
    closeReason: reason,
    durationMs: performance.now() - openedAt,
    firstMarkAtMs: playback?.firstMarkAtMs ?? null,
  };
}
