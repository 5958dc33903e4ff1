/**
 * A stand-in voice-agent runtime for bridge mode, run as a child process: it accepts callrec's
 * upstream connections (Twilio protocol), notes when each relayed caller frame arrived, and
 * answers every caller frame with a frame of its own audio, as a talking agent would.
 *
 * Env: `BENCH_CALLS`, `BENCH_TICKS`, `BENCH_PORT` (default any free one: the agent must list the URL). Calls are named `<anything>-<index>` in the `call_id`
 * parameter; a frame's tick is its timestamp / 20 ms. On any IPC message it replies with
 * `{ received: Float64Array }`: arrival times (µs, CLOCK_MONOTONIC, comparable across
 * processes) at `index * ticks + tick`, 0 where none arrived.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const calls = Number(process.env.BENCH_CALLS);
const ticks = Number(process.env.BENCH_TICKS);
const received = new Float64Array(calls * ticks);
// 20 ms of a 1.5 kHz μ-law tone: what the agent "says" back, the same bytes every frame.
const AGENT_PAYLOAD = Buffer.from(Array.from({ length: 160 }, (_, i) => (i % 16 < 8 ? 0x1f : 0x9f))).toString('base64');

// BENCH_PORT: the port the bench's agent lists in its `agent_ws_urls` (a stream's agent_url must be one of them).
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.BENCH_PORT ?? 0),
  perMessageDeflate: false,
});
wss.on('connection', (ws) => {
  let base = -1;
  let reply = '';
  ws.on('message', (data: Buffer) => {
    const at = Number(process.hrtime.bigint() / 1000n);
    const message = JSON.parse(data.toString()) as {
      event: string;
      streamSid?: string;
      start?: { customParameters?: Record<string, string> };
      media?: { timestamp: string };
    };
    if (message.event === 'start') {
      const index = Number(/-(\d+)$/.exec(message.start?.customParameters?.call_id ?? '')?.[1] ?? -1);
      if (index >= 0 && index < calls) base = index * ticks;
      reply = JSON.stringify({ event: 'media', streamSid: message.streamSid, media: { payload: AGENT_PAYLOAD } });
    } else if (message.event === 'media') {
      const tick = Number(message.media!.timestamp) / 20;
      if (base >= 0 && tick < ticks) received[base + tick] = at;
      ws.send(reply);
    }
  });
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.send!({ port: (wss.address() as AddressInfo).port });
});
process.on('message', () => process.send!({ received }));
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
