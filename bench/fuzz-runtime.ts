/**
 * The fuzzer's voice-agent runtime, for bridge-mode cases: callrec connects to
 * `ws://…/<seed>` and relays the caller to it; it answers every message it is sent with that
 * message echoed back (media, marks, whatever came), now and then mutated, plus stray marks and
 * clears. What it sends depends on the seed in its URL and on what it receives only.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { FixtureMessage } from '../src/replay/fixture.js';
import { between, mutateStream, pick } from './mutate.js';
import { rng } from './rng.js';

export interface FuzzRuntime {
  /** The runtime's URL for one case: its answers follow `seed`. */
  urlFor(seed: number): string;
  close(): Promise<void>;
}

export async function startFuzzRuntime(): Promise<FuzzRuntime> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    maxPayload: 2 * 1024 * 1024,
  });
  wss.on('connection', (ws, req) => {
    const random = rng(Number(/\/(-?\d+)$/.exec(req.url ?? '')?.[1] ?? 0));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, binary: boolean) => {
      let answer: FixtureMessage[] = [{ t: 0, data: binary ? data : data.toString(), binary }];
      if (random() < 0.2) answer = mutateStream(answer, 0, random).messages;
      if (random() < 0.05)
        answer.push({
          t: 0,
          data: pick(random, [
            '{"event":"clear"}',
            '{"event":"mark","mark":{"name":"agent"}}',
            '{"event":"mark","mark":{"name":"callrec-consent-x"}}',
          ]),
          binary: false,
        });
      for (let n = random() < 0.05 ? between(random, 2, 20) : 1; n > 0; n--)
        for (const m of answer) if (ws.readyState === ws.OPEN) ws.send(m.data, { binary: m.binary });
    });
  });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  return {
    urlFor: (seed) => `ws://127.0.0.1:${port}/${seed}`,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
