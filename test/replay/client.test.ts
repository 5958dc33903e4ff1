import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { adapters } from '../../src/protocols/index.js';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures');

interface Received {
  data: Buffer;
  binary: boolean;
}

/** A provider endpoint stand-in that records what arrives on each connection. */
async function recordingServer(onConnection?: (ws: WebSocket, got: Received[]) => void) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const connections: Array<{ got: Received[]; headers: Record<string, unknown>; closed: Promise<unknown> }> = [];
  wss.on('connection', (ws, req) => {
    const got: Received[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => got.push({ data, binary }));
    connections.push({ got, headers: req.headers, closed: once(ws, 'close') });
    onConnection?.(ws, got);
  });
  const url = (p: string) => `ws://127.0.0.1:${(wss.address() as AddressInfo).port}${p}`;
  return { wss, connections, url, close: () => new Promise((r) => wss.close(r)) };
}

function expectSameStream(
  fixture: Fixture,
  got: Received[],
  startIndex: number,
  startCheck: (start: Record<string, unknown>) => void,
) {
  expect(got).toHaveLength(fixture.messages.length);
  fixture.messages.forEach((message, i) => {
    expect(got[i].binary).toBe(message.binary);
    if (i === startIndex) startCheck(JSON.parse(got[i].data.toString()));
    else expect(Buffer.compare(got[i].data, Buffer.from(message.data as string | Buffer))).toBe(0);
  });
}

describe('replayFixture', () => {
  test('twilio: every message in send order, params injected, closed with 1000', async () => {
    const server = await recordingServer();
    const fixture = await readFixture(path.join(FIXTURES, 'twilio-fork-tones.jsonl'));
    const result = await replayFixture(fixture, {
      url: server.url('/media/twilio'),
      agentId: 'agent-42',
      token: 'key-1',
      callId: 'call-9',
      speed: 'max',
    });
    await server.connections[0].closed;
    expect(result).toMatchObject({ callId: 'call-9', sent: fixture.messages.length, closeCode: 1000 });
    expectSameStream(fixture, server.connections[0].got, 1, (start) => {
      expect((start.start as Record<string, unknown>).customParameters).toEqual({
        agent_id: 'agent-42',
        token: 'key-1',
        call_id: 'call-9',
      });
    });
    await server.close();
  });

  test('telnyx: custom_parameters rewritten, placeholder token dropped when none given, headers sent', async () => {
    const server = await recordingServer();
    const fixture = await readFixture(path.join(FIXTURES, 'telnyx-fork-pcma.jsonl'));
    await replayFixture(fixture, {
      url: server.url('/media/telnyx'),
      agentId: 'a-2',
      speed: 'max',
      headers: { 'x-telnyx-streaming-auth-token': 'hdr' },
    });
    await server.connections[0].closed;
    expect(server.connections[0].headers['x-telnyx-streaming-auth-token']).toBe('hdr');
    expectSameStream(fixture, server.connections[0].got, 1, (start) => {
      expect((start.start as Record<string, unknown>).custom_parameters).toEqual({ agent_id: 'a-2' });
    });
    await server.close();
  });

  test('vonage: binary frames stay binary, headers rewritten in websocket:connected', async () => {
    const server = await recordingServer();
    const fixture = await readFixture(path.join(FIXTURES, 'vonage-tones.jsonl'));
    await replayFixture(fixture, { url: server.url('/media/vonage'), agentId: 'v-1', token: 't', speed: 'max' });
    await server.connections[0].closed;
    expectSameStream(fixture, server.connections[0].got, 0, (connected) => {
      expect(connected).toEqual({
        event: 'websocket:connected',
        'content-type': 'audio/l16;rate=16000',
        agent_id: 'v-1',
        token: 't',
      });
    });
    await server.close();
  });

  test.each([
    ['plivo-fork-tones', 0],
    ['exotel-voicebot-caller', 1],
    ['bandwidth-fork-tones', 0],
    ['signalwire-fork-tones', 1],
  ])(
    '%s: the parameters rewritten where the provider carries them, the rest byte for byte',
    async (name, startIndex) => {
      const server = await recordingServer();
      const fixture = await readFixture(path.join(FIXTURES, `${name}.jsonl`));
      const { provider } = fixture.meta;
      await replayFixture(fixture, {
        url: server.url(`/media/${provider}`),
        agentId: 'p-1',
        token: 'key-2',
        callId: 'call-3',
        speed: 'max',
      });
      await server.connections[0].closed;
      expectSameStream(fixture, server.connections[0].got, startIndex, (start) => {
        const event = adapters[provider]({ headers: {}, query: {} }).parseProviderMessage(
          Buffer.from(JSON.stringify(start)),
          false,
        );
        expect(event).toMatchObject({
          type: 'start',
          start: { params: { agent_id: 'p-1', token: 'key-2', call_id: 'call-3' } },
        });
      });
      await server.close();
    },
  );

  test('paced replay keeps send order and collects replies', async () => {
    const server = await recordingServer((ws) => ws.send('hello'));
    const fixture = await readFixture(path.join(FIXTURES, 'telnyx-fork-pcma.jsonl'));
    const short: Fixture = { meta: fixture.meta, messages: fixture.messages.slice(0, 40) };
    const seen: string[] = [];
    const result = await replayFixture(short, {
      url: server.url('/x'),
      speed: 20,
      closeAfterMs: 50,
      onMessage: (d) => seen.push(d.toString()),
    });
    await server.connections[0].closed;
    expect(seen).toEqual(['hello']);
    expect(result.received.map((r) => r.data.toString())).toEqual(['hello']);
    expect(server.connections[0].got.slice(2).map((g) => g.data.toString())).toEqual(
      short.messages.slice(2).map((m) => m.data),
    );
    await server.close();
  });

  test('a server close before the end resolves with its code and reason', async () => {
    const server = await recordingServer((ws, got) => {
      ws.on('message', () => {
        if (got.length === 3) ws.close(4001, 'agent_id missing');
      });
    });
    const fixture = await readFixture(path.join(FIXTURES, 'twilio-connect-caller.jsonl'));
    const result = await replayFixture(fixture, { url: server.url('/media/twilio'), speed: 'realtime' });
    expect(result.closeCode).toBe(4001);
    expect(result.closeReason).toBe('agent_id missing');
    expect(result.sent).toBeLessThan(fixture.messages.length);
    await server.close();
  });

  test('an unreachable server rejects', async () => {
    const server = await recordingServer();
    const url = server.url('/');
    await server.close();
    const fixture = await readFixture(path.join(FIXTURES, 'telnyx-fork-pcma.jsonl'));
    await expect(replayFixture(fixture, { url, speed: 'max' })).rejects.toThrow();
  });
});
