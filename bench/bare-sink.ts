/**
 * The baseline the bench compares callrec with: a bare `ws` server that only `JSON.parse`s each
 * message, i.e. the least any media server must do with this traffic. Run as a child process
 * (announces `{ port }` over IPC) so its CPU is measured on its own.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024, perMessageDeflate: false });
let parsed = 0;
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => {
    JSON.parse(data.toString());
    parsed++;
  });
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.send!({ port: (wss.address() as AddressInfo).port });
});
process.on('message', () => process.send!({ parsed }));
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
