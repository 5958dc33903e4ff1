/**
 * The load generator: many calls at once (Twilio Media Streams, or another provider's wire), paced in real time: every 20 ms
 * each call sends a frame, the calls spread over the tick as real streams are. Each tick's message strings are built once and
 * sent on every socket (callrec keys a stream by its socket, not by the `streamSid` inside media
 * messages), so the generator costs little next to the server it loads.
 */
import { once } from 'node:events';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

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
  let magnitude = Math.min(Math.abs(sample), 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** The μ-law payload (base64) every call sends on both tracks at `tick`: what its recording must hold there. */
export function payloadAt(tick: number): string {
  return PAYLOADS[tick % PAYLOADS.length];
}

/** Twilio's media message for one track at one tick (`chunk` counts from 1 per track). */
export function mediaMessage(track: 'inbound' | 'outbound', tick: number, sequence: number): string {
  return `{"event":"media","sequenceNumber":"${sequence}","media":{"track":"${track}","chunk":"${tick + 1}","timestamp":"${tick * FRAME_MS}","payload":"${payloadAt(tick)}"},"streamSid":"MZbench"}`;
}

export function startMessages(callId: string, tracks: string[], params: Record<string, string>): string[] {
  const start = {
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid: 'ACbench',
      streamSid: `MZ${callId}`,
      callSid: callId,
      tracks,
      customParameters: { ...params, call_id: callId },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: `MZ${callId}`,
  };
  return [JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }), JSON.stringify(start)];
}

/** One message on the wire. */
export interface WireFrame {
  data: Buffer;
  binary: boolean;
}

/**
 * How one provider streams a call, for the generator: its upgrade headers, the messages before
 * the first frame, one tick's frames (built once per tick, sent on every socket), and its hang-up.
 */
export interface LoadWire {
  /** Endpoint path under the node, e.g. `/media/twilio`. */
  path: string;
  headers(params: Record<string, string>): Record<string, string>;
  start(callId: string, tracks: string[], params: Record<string, string>): string[];
  frames(tick: number, tracks: string[]): WireFrame[];
  stop: string;
}

/** Twilio Media Streams: a JSON `media` message per track per tick. */
export const TWILIO_WIRE: LoadWire = {
  path: '/media/twilio',
  headers: () => ({}),
  start: startMessages,
  frames: (tick, tracks) => tracks.map((track, t) => ({ data: Buffer.from(mediaMessage(track as 'inbound' | 'outbound', tick, 2 + tick * tracks.length + t)), binary: false })),
  stop: '{"event":"stop","sequenceNumber":"0","streamSid":"MZbench"}',
};

const AUDIOHOOK_SESSION = '4a8e6f0e-7c1b-4a5f-9d0e-6b1c2d3e4f50';

/**
 * Genesys AudioHook Monitor: `open` (the key as X-API-KEY, the agent in Custom Config), then one
 * binary frame per tick with both channels interleaved, the same μ-law as the Twilio wire's.
 */
export const GENESYS_WIRE: LoadWire = {
  path: '/media/genesys',
  headers: (params) => ({ 'x-api-key': params.token ?? '' }),
  start: (callId, tracks, params) => [
    JSON.stringify({
      version: '2',
      id: AUDIOHOOK_SESSION,
      type: 'open',
      seq: 1,
      serverseq: 0,
      position: 'PT0S',
      parameters: {
        organizationId: AUDIOHOOK_SESSION,
        conversationId: callId,
        participant: { id: AUDIOHOOK_SESSION, ani: '+15550100', aniName: 'bench', dnis: '+15550199' },
        media: [{ type: 'audio', format: 'PCMU', channels: tracks.map((t) => (t === 'inbound' ? 'external' : 'internal')), rate: 8000 }],
        customConfig: { agent_id: params.agent_id, call_id: callId },
      },
    }),
  ],
  frames: (tick, tracks) => {
    const payload = Buffer.from(payloadAt(tick), 'base64');
    const frame = Buffer.alloc(payload.length * tracks.length);
    for (let i = 0; i < frame.length; i++) frame[i] = payload[Math.floor(i / tracks.length)];
    return [{ data: frame, binary: true }];
  },
  stop: JSON.stringify({ version: '2', id: AUDIOHOOK_SESSION, type: 'close', seq: 2, serverseq: 1, position: 'PT0S', parameters: { reason: 'end' } }),
};

export interface LoadOptions {
  /** Full endpoint URL, e.g. `ws://127.0.0.1:8080/media/twilio`. */
  url: string;
  /** The provider the calls speak (default Twilio's). */
  wire?: LoadWire;
  callIds: string[];
  seconds: number;
  /** `both`: a forked both_tracks stream; `inbound`: `<Connect><Stream>` (caller only). */
  tracks: 'both' | 'inbound';
  /** Custom parameters of every call (agent_id, token, agent_url…); `call_id` is added. */
  params: Record<string, string>;
  /** Awaited after every call sent its start message, before the first frame. */
  beforeFrames?: () => Promise<void>;
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
  paired?: { url: string; callIds: string[]; wire?: LoadWire };
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
  const tracks = opts.tracks === 'both' ? ['inbound', 'outbound'] : ['inbound'];
  const wire = opts.wire ?? TWILIO_WIRE;
  const pairedWire = opts.paired?.wire ?? TWILIO_WIRE;
  const open = (url: string, callIds: string[], w: LoadWire) =>
    Promise.all(
      callIds.map(async (callId) => {
        const ws = new WebSocket(url, { perMessageDeflate: false, headers: w.headers(opts.params) });
        await once(ws, 'open');
        ws.on('error', () => {}); // failures show as close codes
        for (const m of w.start(callId, tracks, opts.params)) ws.send(m);
        return ws;
      }),
    );
  if (opts.paired && opts.paired.callIds.length !== n) throw new Error('paired calls must match the calls one for one');
  const sockets = [...(await open(opts.url, opts.callIds, wire)), ...(opts.paired ? await open(opts.paired.url, opts.paired.callIds, pairedWire) : [])];
  /** Each socket's wire: the calls', then the paired calls'. */
  const wireOf = (s: number) => (s < n ? wire : pairedWire);
  const closed = sockets.map((ws) => once(ws, 'close').then(([code]) => code as number));
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
  let messages: { tick: number; frames: Map<LoadWire, WireFrame[]> } | null = null;
  await new Promise<void>((resolve) => {
    const run = () => {
      // Send every slot that is due (catching up if a timer fired late), then sleep till the next.
      const due = Math.min(slots, Math.floor((performance.now() - t0) / slotMs) + 1);
      if (due - slot > PHASES) lateTicks++;
      for (; slot < due; slot++) {
        const tick = Math.floor(slot / PHASES);
        if (messages?.tick !== tick) {
          // Encoded once per tick, not once per socket.
          messages = { tick, frames: new Map([wire, pairedWire].map((w) => [w, w.frames(tick, tracks)])) };
        }
        for (let c = slot % PHASES; c < n; c += PHASES) {
          for (const s of copies(c, tick)) {
            const ws = sockets[s];
            if (ws.readyState !== WebSocket.OPEN) continue;
            if (sendTimes) sendTimes[s * ticks + tick] = Number(process.hrtime.bigint() / 1000n);
            for (const frame of messages.frames.get(wireOf(s))!) ws.send(frame.data, frame.binary ? BINARY : TEXT);
            framesSent += tracks.length;
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

  sockets.forEach((ws, s) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(wireOf(s).stop);
    ws.close(1000);
  });
  const closeCodes = await Promise.race([Promise.all(closed), sleep(15_000, null, { ref: false }).then(() => sockets.map((ws) => (ws.terminate(), 1006)))]);
  return { ticks, framesSent, lateTicks, sendTimes, closeCodes };
}

/**
 * Streams one call as fast as the socket drains (the frames' timestamps carry the timing); resolves
 * at hang-up: after `seconds` of audio, or as soon as `signal` aborts.
 */
export async function blastCall(opts: { url: string; callId: string; seconds: number; params: Record<string, string>; beforeFrames?: () => Promise<void>; signal?: AbortSignal }): Promise<{ hungUpAt: number; closed: Promise<number> }> {
  const ws = new WebSocket(opts.url, { perMessageDeflate: false });
  await once(ws, 'open');
  ws.on('error', () => {});
  const closed = once(ws, 'close').then(([code]) => code as number);
  for (const m of startMessages(opts.callId, ['inbound', 'outbound'], opts.params)) ws.send(m);
  await opts.beforeFrames?.();
  const ticks = Math.round((opts.seconds * 1000) / FRAME_MS);
  for (let tick = 0; tick < ticks && !opts.signal?.aborted && ws.readyState === WebSocket.OPEN; tick++) {
    ws.send(mediaMessage('inbound', tick, 2 + tick * 2));
    ws.send(mediaMessage('outbound', tick, 3 + tick * 2));
    // Let the socket drain rather than queue the whole call in memory.
    if (ws.bufferedAmount > 1 << 20) while (ws.bufferedAmount > 1 << 18 && ws.readyState === WebSocket.OPEN) await sleep(1);
    // The kernel may take every frame as fast as they come, leaving nothing buffered: yield once a
    // second of audio anyway, or this loop starves every other call and timer in the process.
    else if (tick % 50 === 49) await yieldToLoop();
  }
  while (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) await sleep(1);
  const hungUpAt = performance.now();
  ws.send(TWILIO_WIRE.stop);
  ws.close(1000);
  return { hungUpAt, closed };
}
