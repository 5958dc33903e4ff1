/**
 * The load generator: many provider media streams at once (Twilio's unless a `stream` says which
 * provider's, `bench/wires.ts`), paced in real time: every 20 ms
 * each call sends a frame, the calls spread over the tick as real streams are. Each tick's message strings are built once and
 * sent on every socket (callrec keys a stream by its socket, not by the `streamSid` inside media
 * messages), so the generator costs little next to the server it loads.
 */
import { once } from 'node:events';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { LOAD_WIRES, type LoadWire, type Track } from './wires.js';

export const FRAME_MS = 20;
/** Each 20 ms tick is split in this many send slots, calls spread evenly over them. */
const PHASES = 10;
const TEXT = { binary: false };
const BINARY = { binary: true };

/** 50 distinct 20 ms μ-law payloads (a 440 Hz tone under a slow swell), base64, cycled. */
const PAYLOADS = Array.from({ length: 50 }, (_, f) => {
  const bytes = Buffer.alloc(160);
  for (let i = 0; i < 160; i++) {
    const t = (f * 160 + i) / 8000;
    const sample = Math.round(6000 * Math.sin(2 * Math.PI * 440 * t) * (0.6 + 0.4 * Math.sin(Math.PI * t)));
    bytes[i] = linearToUlaw(sample);
  }
  return bytes.toString('base64');
});

/** G.711 μ-law encode of one sample; the bench's own copy so it measures the server, not shared code. */
function linearToUlaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  const magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** The μ-law payload (base64) every call sends on both tracks at `tick`: what its recording must hold there. */
export function payloadAt(tick: number): string {
  return PAYLOADS[tick % PAYLOADS.length];
}

const TWILIO = LOAD_WIRES.twilio!;

/** A message as sent. */
export interface WireFrame {
  data: Buffer;
  binary: boolean;
}

/** One call's connection as the generator drives it: a WebSocket, or a SIPREC session and its RTP. */
export interface LoadSocket {
  readonly open: boolean;
  /** Sends one tick's frames (`LoadStream.frames`). */
  send(frames: WireFrame[]): void;
  /** Hangs up: the stream's stop message and a close 1000; a SIPREC session's BYE. */
  hangUp(): void;
  /** Resolves with how the call ended: a WebSocket close code (a SIPREC session answers 1000 for a BYE taken). */
  readonly closed: Promise<number>;
  terminate(): void;
}

/** One provider's traffic, for loads of providers other than Twilio (`bench/fixture-stream.ts`). */
export interface LoadStream {
  /** How a call connects (`bench/siprec-client.ts`); by default a WebSocket to `url`, sent `start`. */
  connect?(url: string, callId: string, params: Record<string, string>): Promise<LoadSocket>;
  /** The URL a call connects to (its endpoint; Asterisk and ACS carry the parameters on it). */
  url(base: string, callId: string, params: Record<string, string>): string;
  /** What a call sends before its first frame. */
  start(callId: string, params: Record<string, string>): WireFrame[];
  /** The frames every call sends at `tick` (built once per tick). */
  frames(tick: number): WireFrame[];
  /** Sent before closing, where the provider has such a message. */
  stop: string | null;
  /** Headers of the upgrade, where the provider authenticates there (AudioHook's X-API-KEY). */
  headers?(params: Record<string, string>): Record<string, string>;
}

export interface LoadOptions {
  /** Full endpoint URL, e.g. `ws://127.0.0.1:8080/media/twilio`. */
  url: string;
  callIds: string[];
  seconds: number;
  /** `both`: a forked both_tracks stream; `inbound`: `<Connect><Stream>` (caller only). */
  tracks: 'both' | 'inbound';
  /** Another provider's traffic instead of Twilio's (`tracks` then does not apply). */
  stream?: LoadStream;
  /** Custom parameters of every call (agent_id, token, agent_url…); `call_id` is added. */
  params: Record<string, string>;
  /** Called right before the first socket opens (set-up CPU sampling). */
  beforeOpen?: () => void;
  /** Awaited after every call sent its start message, before the first frame. */
  beforeFrames?: () => Promise<void>;
  /** Awaited after the last tick, before the calls hang up (until the server has taken every frame). */
  beforeHangUp?: () => Promise<void>;
  /** Called right before the first tick and right after the last one (CPU sampling). */
  onLoadStart?: () => void;
  onLoadEnd?: () => void;
  /** Every second during the load (RSS sampling). */
  onSecond?: () => void;
  /** Keep each frame's send time (µs, CLOCK_MONOTONIC) at `call * ticks + tick`. */
  recordSendTimes?: boolean;
  /**
   * Stream every call a second time, to this endpoint as these calls: each frame goes to both
   * at the same moment (which first alternates by tick), so two servers are measured on the
   * same frames under the same machine load. Their send times follow the first calls'
   * (`(n + call) * ticks + tick`), and so do their close codes.
   */
  paired?: { url: string; callIds: string[]; stream?: LoadStream };
}

/**
 * A provider's load in the messages `bench/wires.ts` writes for it: the same audio on every
 * provider, one or both tracks, so providers compare on equal terms.
 */
export function wireStream(wire: LoadWire, tracks: Track[]): LoadStream {
  return {
    url: (base) => base,
    start: (callId, params) => wire.start(callId, tracks, params).map((m) => ({ data: Buffer.from(m), binary: false })),
    frames: (tick) =>
      tracks.map((track, i) => ({
        data: Buffer.from(wire.media(track, tick, 2 + i + tick * tracks.length, payloadAt(tick))),
        binary: false,
      })),
    stop: wire.stop,
  };
}

export interface LoadResult {
  ticks: number;
  framesSent: number;
  /** Ticks that fired over a frame late (the generator falling behind). */
  lateTicks: number;
  sendTimes: Float64Array | null;
  closeCodes: number[];
}

/** Opens the calls, streams them in real time for `seconds`, hangs up (stop + close 1000). */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const n = opts.callIds.length;
  const tracks: Track[] = opts.tracks === 'both' ? ['inbound', 'outbound'] : ['inbound'];
  const stream = opts.stream ?? wireStream(TWILIO, tracks);
  // The paired calls may speak another provider's messages (the bare sink takes Twilio's).
  const pairedStream = opts.paired?.stream ?? stream;
  const open = (url: string, callIds: string[], stream: LoadStream) =>
    Promise.all(
      callIds.map((callId) =>
        stream.connect ? stream.connect(url, callId, opts.params) : connectWebSocket(url, callId, opts.params, stream),
      ),
    );
  if (opts.paired && opts.paired.callIds.length !== n) throw new Error('paired calls must match the calls one for one');
  opts.beforeOpen?.();
  const sockets = [
    ...(await open(opts.url, opts.callIds, stream)),
    ...(opts.paired ? await open(opts.paired.url, opts.paired.callIds, pairedStream) : []),
  ];
  const streamOf = (s: number) => (s < n ? stream : pairedStream);
  const closed = sockets.map((socket) => socket.closed);
  await opts.beforeFrames?.();

  const ticks = Math.round((opts.seconds * 1000) / FRAME_MS);
  const sendTimes = opts.recordSendTimes ? new Float64Array(sockets.length * ticks) : null;
  /** The sockets of call `c`, in the order this tick sends to them. */
  const copies = opts.paired ? (c: number, tick: number) => (tick & 1 ? [c + n, c] : [c, c + n]) : (c: number) => [c];
  let framesSent = 0;
  let lateTicks = 0;
  opts.onLoadStart?.();
  const t0 = performance.now();
  const second = setInterval(() => opts.onSecond?.(), 1000);

  // Real calls are not phase-aligned: each provider stream started at its own moment. Calls are
  // spread over PHASES slots of each 20 ms tick, so the server sees a steady stream of frames
  // rather than every call's frame in one burst.
  const slotMs = FRAME_MS / PHASES;
  const slots = ticks * PHASES;
  let slot = 0;
  let messages: { tick: number; frames: Map<LoadStream, WireFrame[]> } | null = null;
  await new Promise<void>((resolve) => {
    const run = () => {
      // Send every slot that is due (catching up if a timer fired late), then sleep till the next.
      const due = Math.min(slots, Math.floor((performance.now() - t0) / slotMs) + 1);
      if (due - slot > PHASES) lateTicks++;
      for (; slot < due; slot++) {
        const tick = Math.floor(slot / PHASES);
        // Encoded once per tick, not once per socket.
        if (messages?.tick !== tick)
          messages = { tick, frames: new Map([stream, pairedStream].map((st) => [st, st.frames(tick)])) };
        for (let c = slot % PHASES; c < n; c += PHASES) {
          for (const s of copies(c, tick)) {
            const socket = sockets[s];
            if (!socket.open) continue;
            if (sendTimes) sendTimes[s * ticks + tick] = Number(process.hrtime.bigint() / 1000n);
            const frames = messages.frames.get(streamOf(s))!;
            socket.send(frames);
            framesSent += frames.length;
          }
        }
      }
      if (slot >= slots) return resolve();
      setTimeout(run, Math.max(0, t0 + slot * slotMs - performance.now()));
    };
    run();
  });
  clearInterval(second);
  opts.onLoadEnd?.();

  await opts.beforeHangUp?.();
  for (const socket of sockets) if (socket.open) socket.hangUp();
  const closeCodes = await Promise.race([
    Promise.all(closed),
    sleep(15_000, null, { ref: false }).then(() => sockets.map((socket) => (socket.terminate(), 1006))),
  ]);
  return { ticks, framesSent, lateTicks, sendTimes, closeCodes };
}

/** A call over a WebSocket to the stream's URL: its start messages sent, its frames as messages. */
async function connectWebSocket(
  url: string,
  callId: string,
  params: Record<string, string>,
  stream: LoadStream,
): Promise<LoadSocket> {
  const ws = new WebSocket(stream.url(url, callId, params), {
    perMessageDeflate: false,
    headers: stream.headers?.(params),
  });
  await once(ws, 'open');
  ws.on('error', () => {}); // failures show as close codes
  const closed = once(ws, 'close').then(([code]) => code as number);
  for (const m of stream.start(callId, params)) ws.send(m.data, { binary: m.binary });
  return {
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
    send(frames) {
      for (const frame of frames) ws.send(frame.data, frame.binary ? BINARY : TEXT);
    },
    hangUp() {
      if (stream.stop !== null) ws.send(stream.stop);
      ws.close(1000);
    },
    closed,
    terminate: () => ws.terminate(),
  };
}

/**
 * Streams one call as fast as the socket drains (the frames' timestamps carry the timing); resolves
 * at hang-up: after `seconds` of audio, or as soon as `signal` aborts.
 */
export async function blastCall(opts: {
  url: string;
  callId: string;
  seconds: number;
  params: Record<string, string>;
  beforeFrames?: () => Promise<void>;
  signal?: AbortSignal;
}): Promise<{ hungUpAt: number; closed: Promise<number> }> {
  const ws = new WebSocket(opts.url, { perMessageDeflate: false });
  await once(ws, 'open');
  ws.on('error', () => {});
  const closed = once(ws, 'close').then(([code]) => code as number);
  for (const m of TWILIO.start(opts.callId, ['inbound', 'outbound'], opts.params)) ws.send(m);
  await opts.beforeFrames?.();
  const ticks = Math.round((opts.seconds * 1000) / FRAME_MS);
  for (let tick = 0; tick < ticks && !opts.signal?.aborted && ws.readyState === WebSocket.OPEN; tick++) {
    ws.send(TWILIO.media('inbound', tick, 2 + tick * 2, payloadAt(tick)));
    ws.send(TWILIO.media('outbound', tick, 3 + tick * 2, payloadAt(tick)));
    // Let the socket drain rather than queue the whole call in memory.
    if (ws.bufferedAmount > 1 << 20)
      while (ws.bufferedAmount > 1 << 18 && ws.readyState === WebSocket.OPEN) await sleep(1);
    // The kernel may take every frame as fast as they come, leaving nothing buffered: yield once a
    // second of audio anyway, or this loop starves every other call and timer in the process.
    else if (tick % 50 === 49) await yieldToLoop();
  }
  while (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) await sleep(1);
  const hungUpAt = performance.now();
  ws.send(TWILIO.stop);
  ws.close(1000);
  return { hungUpAt, closed };
}
