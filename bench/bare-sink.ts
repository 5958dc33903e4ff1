/**
 * The baseline the bench compares callrec with: a bare `ws` server that `JSON.parse`s each
 * message and base64-decodes each media payload, i.e. the least any media server must do with
 * this traffic to have the audio. Run as a child process (announces `{ port }` over IPC) so its
 * CPU is measured on its own.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024, perMessageDeflate: false });
let parsed = 0;
/** Bytes of audio decoded: read at the end, so the decode is not optimised away. */
let audioBytes = 0;
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer, binary: boolean) => {
    parsed++;
    // Binary frames (`bench --provider` jambonz, Asterisk…) are the audio itself.
    if (binary) return void (audioBytes += data.length);
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      return; // Asterisk's plain-text control lines
    }
    // Twilio's shape and its kin (Plivo, Exotel), Bandwidth's (payload at the top), ACS's.
    const payload =
      message.media?.payload ??
      message.audioData?.data ??
      (message.eventType === 'media' ? message.payload : undefined);
    if (typeof payload === 'string') audioBytes += Buffer.from(payload, 'base64').length;
  });
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.send!({ port: (wss.address() as AddressInfo).port });
});
process.on('message', () => process.send!({ parsed, audioBytes }));
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
