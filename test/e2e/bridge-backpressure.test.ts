import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';
import {
  startServerProcess,
  startTestServer,
  uniqueCallId,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

// Issue 23 finding 2: bridge relaying is bounded both ways and before the runtime's handshake.
// The node runs in a process of its own, so its memory (callrec_process_resident_memory_bytes)
// is not the flooding client's: the flood waits in the test process's socket buffers.

const MiB = 1024 * 1024;
/** What the tests flood with: 2 048 messages just under the 64 KiB message limit. */
const FLOOD_MESSAGES = 2048;
const NAME_BYTES = 63 * 1024;
const FLOOD_BYTES = FLOOD_MESSAGES * NAME_BYTES;
const STREAM_SID = 'MZbackpressure';

/** A Twilio start (a bidirectional `<Connect><Stream>`) for `agentId`. */
const startMessage = (agentId: string, token: string) =>
  JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    streamSid: STREAM_SID,
    start: {
      accountSid: 'AC1',
      streamSid: STREAM_SID,
      callSid: uniqueCallId('CA'),
      tracks: ['inbound'],
      customParameters: { agent_id: agentId, token },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  });

/** A Twilio mark of ~63 KiB: relayed between provider and runtime as is, and not recorded. */
const bigMark = (i: number) =>
  JSON.stringify({ event: 'mark', streamSid: STREAM_SID, mark: { name: `${i}-${'x'.repeat(NAME_BYTES)}` } });

let ts: TestServer;
let node: ServerProcess;
beforeAll(async () => {
  ts = await startTestServer();
  node = await startServerProcess(ts);
}, 60_000);
afterAll(async () => {
  await node?.close();
  await ts?.close();
});

/** `/metrics` of `url`: the sum of the samples of `name` whose labels include `labels`. */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}${labels ? '{' : ' '}`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

/** A provider's stream to `wsUrl` for an agent bridged to `runtimeUrl`: connected, then its start. */
async function bridgedStream(
  wsUrl: string,
  runtimeUrl: string,
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const agentId = uniqueCallId('bridged');
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    agent_ws_url: runtimeUrl,
  });
  const ws = new WebSocket(`${wsUrl}/media/twilio`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  await once(ws, 'open');
  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  ws.send(startMessage(agentId, ts.key));
  return { ws, closed };
}

/** A runtime on 127.0.0.1: `onConnection` gets each socket it accepts as it does; `first` the first one. */
async function runtimeServer(
  onConnection: (ws: WebSocket) => void = () => {},
): Promise<{ url: string; first: Promise<WebSocket>; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 16 * MiB });
  await once(wss, 'listening');
  wss.on('connection', onConnection);
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    first: once(wss, 'connection').then(([ws]) => ws as WebSocket),
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

/** Sends the flood on `ws` at once (it waits in `ws`'s buffer for the peer to read), then waits until the node paused `paused`'s side or took everything. */
async function flood(ws: WebSocket, paused: 'provider' | 'runtime'): Promise<number> {
  const pauses = () => metric(node.url, 'callrec_bridge_relay_pauses_total', `paused="${paused}"`);
  const before = await pauses();
  for (let i = 0; i < FLOOD_MESSAGES; i++) ws.send(bigMark(i));
  while ((await pauses()) === before && ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN) await sleep(20);
  return (await pauses()) - before;
}

/** The node's resident memory, after a collection would have settled: the lowest of a few samples. */
async function rss(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) samples.push(await metric(node.url, 'callrec_process_resident_memory_bytes'));
  return Math.min(...samples);
}

test("a runtime that never reads while the provider floods: the provider is paused, the relay holds under its cap, the node's memory stays flat", async () => {
  // Reads the handshake, then nothing: its socket's receive buffer fills, then callrec's send buffer.
  const runtime = await runtimeServer((ws) => ws.pause());
  const before = await rss();
  const provider = await bridgedStream(node.wsUrl, runtime.url);
  await runtime.first;
  try {
    expect(await flood(provider.ws, 'provider')).toBeGreaterThanOrEqual(1);
    const queued = await metric(node.url, 'callrec_bridge_relay_buffered_bytes', 'toward="runtime"');
    // Past the 256 KiB mark by at most what one read from the provider's socket held.
    expect(queued).toBeGreaterThan(0);
    expect(queued).toBeLessThanOrEqual(256 * 1024 + 128 * 1024);
    // Most of the flood never left the provider: the node stopped reading it.
    expect(provider.ws.bufferedAmount).toBeGreaterThan(FLOOD_BYTES - 32 * MiB);
    expect((await rss()) - before).toBeLessThan(48 * MiB);
  } finally {
    provider.ws.terminate();
    await runtime.close();
  }
});

test("a provider that never reads while the runtime floods: the runtime is paused, the relay holds under its cap, the node's memory stays flat", async () => {
  const runtime = await runtimeServer();
  const before = await rss();
  const provider = await bridgedStream(node.wsUrl, runtime.url);
  // The provider reads nothing from now on.
  provider.ws.pause();
  const runtimeSocket = await runtime.first;
  await new Promise<void>((resolve) =>
    runtimeSocket.on('message', (data) => data.toString().includes('"event":"start"') && resolve()),
  );
  try {
    expect(await flood(runtimeSocket, 'runtime')).toBeGreaterThanOrEqual(1);
    const queued = await metric(node.url, 'callrec_bridge_relay_buffered_bytes', 'toward="provider"');
    expect(queued).toBeGreaterThan(0);
    expect(queued).toBeLessThanOrEqual(256 * 1024 + 128 * 1024);
    expect(runtimeSocket.bufferedAmount).toBeGreaterThan(FLOOD_BYTES - 32 * MiB);
    expect((await rss()) - before).toBeLessThan(48 * MiB);
  } finally {
    provider.ws.terminate();
    await runtime.close();
  }
});

test("before the runtime's handshake (it accepts the connection and never answers): what queues for it is bounded, the provider paused", async () => {
  // Reads what the node sends (its handshake request), and never answers.
  const silent = net.createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const provider = await bridgedStream(node.wsUrl, url);
  try {
    expect(await flood(provider.ws, 'provider')).toBeGreaterThanOrEqual(1);
    expect(await metric(node.url, 'callrec_bridge_relay_buffered_bytes', 'toward="runtime"')).toBeLessThanOrEqual(
      256 * 1024 + 128 * 1024,
    );
    expect(provider.ws.bufferedAmount).toBeGreaterThan(FLOOD_BYTES - 32 * MiB);
  } finally {
    provider.ws.terminate();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('past BRIDGE_RELAY_MAX_BYTES the stream is closed 1008 ERR_RELAY_OVERFLOW with a reason', async () => {
  const capped = await startTestServer({
    env: { BRIDGE_RELAY_HIGH_WATER_BYTES: String(MiB), BRIDGE_RELAY_MAX_BYTES: String(MiB) },
  });
  const runtime = await runtimeServer((ws) => ws.pause());
  try {
    const agentId = 'overflow';
    await capped.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      agent_ws_url: runtime.url,
    });
    const ws = new WebSocket(`${capped.wsUrl}/media/twilio`);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('error', () => {});
    await once(ws, 'open');
    ws.send(startMessage(agentId, capped.key));
    for (let i = 0; i < FLOOD_MESSAGES; i++) ws.send(bigMark(i));
    expect(await closed).toEqual({
      code: 1008,
      reason: expect.stringMatching(
        /^ERR_RELAY_OVERFLOW: agent runtime not reading: \d+ bytes would wait, over BRIDGE_RELAY_MAX_BYTES \(1048576\)$/,
      ),
    });
    expect(await metric(capped.server.url, 'callrec_stream_limit_total', 'limit="ERR_RELAY_OVERFLOW"')).toBe(1);
  } finally {
    await runtime.close();
    await capped.close();
  }
});
