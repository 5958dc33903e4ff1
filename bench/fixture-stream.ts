/**
 * A provider's traffic for the load generator (`callrec bench --provider`) where `bench/wires.ts`
 * has no same-audio stream for it (the binary-frame platforms), taken from its capture in `fixtures/`: the start as the capture has it, then each 20 ms tick's frames, cycled
 * for as long as the load runs. Which message belongs to which tick is read by the provider's
 * own adapter (so frames a capture reordered or repeated are sent once, in order), and a cycle's
 * timestamps move on by the capture's length, so every frame is new to the server.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { adapters } from '../src/protocols/index.js';
import type { Provider } from '../src/protocols/types.js';
import { isStart, rewriteStart, urlWithParams } from '../src/replay/client.js';
import { readFixture, type Fixture } from '../src/replay/fixture.js';
import { FRAME_MS, type LoadStream, type WireFrame } from './load.js';
import { REPO_ROOT } from './node.js';

const FIXTURES = path.join(REPO_ROOT, 'fixtures');

/** A tick's frames with their timestamps moved `cycle` captures on. */
function shifted(frame: WireFrame, cycle: number, capture: { ms: number; ticks: number }): WireFrame {
  if (frame.binary || cycle === 0) return frame;
  const text = frame.data
    .toString()
    .replace(/"timestamp":"(\d+)"/, (_, ms: string) => `"timestamp":"${Number(ms) + cycle * capture.ms}"`)
    .replace(/"chunk":"(\d+)"/, (_, n: string) => `"chunk":"${Number(n) + cycle * capture.ticks}"`)
    .replace(
      /"timestamp":"(\d{4}-[^"]+)"/,
      (_, iso: string) => `"timestamp":"${new Date(Date.parse(iso) + cycle * capture.ms).toISOString()}"`,
    );
  return { data: Buffer.from(text), binary: false };
}

/** The frames of each tick of `fixture`, as its provider's adapter places them; each frame once. */
function ticksOf(fixture: Fixture): WireFrame[][] {
  const adapter = adapters[fixture.meta.provider]({ headers: {}, query: {} });
  const ticks: WireFrame[][] = [];
  const seen = new Set<string>();
  for (const m of fixture.messages) {
    const data = Buffer.from(m.data as string | Buffer);
    const event = adapter.parseProviderMessage(data, m.binary);
    if (event.type !== 'media' && event.type !== 'stereo') continue;
    const tick = Math.round(event.timestampMs / FRAME_MS);
    const key = `${event.type === 'media' ? event.leg : 'both'}@${tick}`;
    if (seen.has(key)) continue;
    seen.add(key);
    (ticks[tick] ??= []).push({ data, binary: m.binary });
  }
  return Array.from(ticks, (frames) => frames ?? []);
}

/** The load of `provider`, from its first fork capture in `fixtures/`. */
export async function fixtureStream(provider: Provider): Promise<LoadStream> {
  const files = (await readdir(FIXTURES)).filter((f) => f.startsWith(`${provider}-`) && f.endsWith('.jsonl')).sort();
  const fixtures = await Promise.all(files.map((f) => readFixture(path.join(FIXTURES, f))));
  const fixture = fixtures.find((f) => f.meta.mode === 'fork') ?? fixtures[0];
  if (fixture === undefined) throw new Error(`no capture of ${provider} in fixtures/`);
  const ticks = ticksOf(fixture);
  const capture = { ms: ticks.length * FRAME_MS, ticks: ticks.length };
  const opening = fixture.messages.slice(0, fixture.messages.findIndex((m) => isStart(provider, m)) + 1);
  return {
    url: (base, callId, params) =>
      urlWithParams(provider, base.replace(/[^/]+$/, provider), {
        agentId: params.agent_id,
        token: params.token,
        callId,
      }),
    start: (callId, params) =>
      opening.map((m) =>
        isStart(provider, m)
          ? {
              data: Buffer.from(
                rewriteStart(provider, m.data as string, { agentId: params.agent_id, token: params.token, callId }),
              ),
              binary: false,
            }
          : { data: Buffer.from(m.data as string | Buffer), binary: m.binary },
      ),
    frames: (tick) =>
      ticks[tick % ticks.length].map((frame) => shifted(frame, Math.floor(tick / ticks.length), capture)),
    // Most of these platforms end a stream by closing the socket; the load closes it.
    stop: null,
  };
}
