/**
 * Asterisk's flow control end to end: after `MEDIA_XOFF` callrec sends Asterisk nothing (its
 * consent prompt, a bridged runtime's audio and marks wait, bounded, counted in
 * `callrec_bridge_relay_buffered_bytes`) until `MEDIA_XON`, then everything, in order; a
 * runtime's `FLUSH_MEDIA` goes at once and drops the audio held before it.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

let ts: TestServer;
let runtimes: WebSocketServer;
/** The runtime's side of each bridged call, in the order they connect, and what it was sent. */
const runtimeSockets: Array<{ ws: WebSocket; got: Array<number | string> }> = [];
beforeAll(async () => {
  ts = await startTestServer();
  runtimes = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(runtimes, 'listening');
  runtimes.on('connection', (ws) => runtimeSockets.push({ ws, got: collect(ws) }));
});
afterAll(async () => {
  for (const ws of runtimes?.clients ?? []) ws.terminate();
  await new Promise((resolve) => runtimes?.close(resolve));
  await ts?.close();
});

/** A socket's messages as they arrive: binary as byte counts, text as strings. */
function collect(ws: WebSocket): Array<number | string> {
  const got: Array<number | string> = [];
  ws.on('message', (data: Buffer, binary) => got.push(binary ? data.length : data.toString()));
  return got;
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await ok()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Bytes the node holds for providers that do not take them (all its calls: this file's one at a time). */
async function heldForProvider(): Promise<number> {
  const text = await (await fetch(`${ts.server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('callrec_bridge_relay_buffered_bytes{toward="provider"}'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

/**
 * Asterisk's side, `Dial(WebSocket/…/c(slin16)v(agent_id=…,token=…))`: `MEDIA_START` and some
 * audio, bridged to a runtime, which is returned once it has the relayed `MEDIA_START`.
 */
async function asteriskCall(agentId: string, settings: object) {
  await ts.agent(agentId, {
    enabled: true,
    format: 'wav',
    agent_ws_url: `ws://127.0.0.1:${(runtimes.address() as AddressInfo).port}`,
    ...settings,
  });
  const connected = runtimeSockets.length;
  const callId = uniqueCallId('asterisk-flow');
  const query = new URLSearchParams({ agent_id: agentId, token: ts.key, call_id: callId });
  const ws = new WebSocket(`${ts.wsUrl}/media/asterisk?${query}`, 'media');
  const got = collect(ws);
  await once(ws, 'open');
  ws.send(
    'MEDIA_START connection_id:c1 channel:WebSocket/c1/0x1 channel_id:1761245643.1 format:slin16 optimal_frame_size:640 ptime:20',
  );
  for (let i = 0; i < 5; i++) ws.send(Buffer.alloc(640), { binary: true });
  await until('the runtime', () => runtimeSockets.length > connected);
  const runtime = runtimeSockets[connected];
  await until('MEDIA_START at the runtime', () => String(runtime.got[0]).startsWith('MEDIA_START'));
  return { ws, got, callId, runtime: runtime.ws, toRuntime: runtime.got };
}

/** Asterisk says its queue is full; resolves once the session has read it (the runtime has it, relayed). */
async function xoff(ws: WebSocket, toRuntime: Array<number | string>): Promise<void> {
  const seen = toRuntime.filter((m) => m === 'MEDIA_XOFF').length;
  ws.send('MEDIA_XOFF');
  await until('MEDIA_XOFF at the runtime', () => toRuntime.filter((m) => m === 'MEDIA_XOFF').length > seen);
}

test("a runtime's audio and marks wait while Asterisk's queue is full, then go in order; a flush goes at once", async () => {
  const { ws, got, runtime, toRuntime } = await asteriskCall('asterisk-flow-bridge', {
    auto_record: true,
    consent_prompt: false,
  });
  // Relayed: the runtime is told as Asterisk told callrec.
  await xoff(ws, toRuntime);
  const before = got.length;
  for (let i = 0; i < 10; i++) runtime.send(Buffer.alloc(640, i + 1), { binary: true });
  runtime.send('MARK_MEDIA correlation_id:r1');
  // Held by the node, counted: none of it reached Asterisk.
  await until(
    'the reply held',
    async () => (await heldForProvider()) === 10 * 640 + 'MARK_MEDIA correlation_id:r1'.length,
  );
  expect(got.slice(before)).toEqual([]);

  ws.send('MEDIA_XON');
  await until('the reply at Asterisk', () => got.length >= before + 11);
  expect(got.slice(before)).toEqual([...Array(10).fill(640), 'MARK_MEDIA correlation_id:r1']);
  expect(await heldForProvider()).toBe(0);

  // Full again: a flush (barge-in) goes at once, and the audio held before it is dropped, not played.
  await xoff(ws, toRuntime);
  const flushedAt = got.length;
  for (let i = 0; i < 5; i++) runtime.send(Buffer.alloc(640), { binary: true });
  runtime.send('MARK_MEDIA correlation_id:r2');
  runtime.send('FLUSH_MEDIA');
  await until('the flush at Asterisk', () => got.includes('FLUSH_MEDIA'));
  expect(got.slice(flushedAt)).toEqual(['MARK_MEDIA correlation_id:r2', 'FLUSH_MEDIA']);
  // The queue is empty after a flush: what the runtime says next is sent at once.
  runtime.send(Buffer.alloc(640), { binary: true });
  await until('audio after the flush', () => got.length === flushedAt + 3);
  expect(got.at(-1)).toBe(640);
  ws.close();
}, 60_000);

test("callrec's consent prompt waits while Asterisk's queue is full, and plays, then its mark, once it drains", async () => {
  const { ws, got, callId, toRuntime } = await asteriskCall('asterisk-flow-consent', {
    // Not recorded until asked: the prompt is due when the `start` action comes, after XOFF.
    auto_record: false,
    consent_prompt: true,
    consent_message: 'This call is recorded.',
  });
  await xoff(ws, toRuntime);
  const before = got.length;
  const res = await ts.api(`/api/calls/${callId}/recording`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'start' }),
  });
  expect(res.status).toBe(200);
  await until('the prompt held', async () => (await heldForProvider()) > 16_000);
  expect(got.slice(before)).toEqual([]);
  ws.send('MEDIA_XON');
  await until('the prompt and its mark at Asterisk', () =>
    got.slice(before).some((m) => typeof m === 'string' && m.startsWith('MARK_MEDIA correlation_id:callrec-consent')),
  );
  const sent = got.slice(before);
  // The whole prompt in 20 ms slin16 frames, then its mark.
  expect(sent.slice(0, -1).every((m) => m === 640)).toBe(true);
  expect(sent.length - 1).toBeGreaterThan(25);
  ws.close();
}, 60_000);
