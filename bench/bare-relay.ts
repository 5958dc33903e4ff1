/**
 * The baseline for bridge mode: a bare relay that forwards every message between a provider
 * socket and an upstream runtime socket, verbatim, and does nothing else. Run as a child process
 * (announces `{ port }` over IPC); env `BENCH_UPSTREAM` is the runtime's URL. Latency through it
 * on the same frames, at the same moment, is what any relay costs here, so callrec's figure minus
 * this one is what callrec adds.
 */
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

const upstreamUrl = process.env.BENCH_UPSTREAM!;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (provider) => {
  const upstream = new WebSocket(upstreamUrl, { perMessageDeflate: false });
  const queued: Array<{ data: Buffer; binary: boolean }> = [];
  upstream.on('open', () => {
    for (const m of queued.splice(0)) upstream.send(m.data, { binary: m.binary });
  });
  provider.on('message', (data: Buffer, binary: boolean) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
    else queued.push({ data, binary });
  });
  upstream.on('message', (data: Buffer, binary: boolean) => {
    if (provider.readyState === WebSocket.OPEN) provider.send(data, { binary });
  });
  provider.on('close', () => upstream.close());
  upstream.on('close', () => provider.close());
  provider.on('error', () => {});
  upstream.on('error', () => {});
});
wss.on('listening', () => {
  process.send!({ port: (wss.address() as AddressInfo).port });
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
