/**
 * Call captures in JSON lines (format: fixtures/README.md): a `meta` line describing what the
 * call contains, then every WebSocket message the provider sent with its send offset.
 */
import { readFile } from 'node:fs/promises';
import { CallrecError } from '../errors.js';
import type { Codec, Leg, SampleRate } from '../../media/types.js';
import type { Provider } from '../protocols/types.js';

export interface Burst {
  leg: Leg;
  freqHz: number;
  startMs: number;
  durationMs: number;
}

/** A frame named by leg and its timestamp (ms on the stream clock). */
export interface FrameRef {
  leg: Leg;
  atMs: number;
}

/** Send-order impairments; the frames' own timestamps always stay truthful. */
export interface Impairments {
  /** Send times are the nominal ones moved by up to ± this, never before the previous message. */
  jitterMs: number;
  /** Each frame here was sent after the leg's next frame. */
  swapped: FrameRef[];
  /** Each frame here was sent `byMs` later than its turn. */
  delayed: Array<FrameRef & { byMs: number }>;
  /** Each frame here was sent twice, byte for byte. */
  duplicated: FrameRef[];
  /** Each frame here was never sent (always in that leg's silence). */
  lost: FrameRef[];
}

export interface FixtureMeta {
  provider: Provider;
  description: string;
  mode: 'fork' | 'bridge';
  codec: Codec;
  /** The recording's rate. */
  sampleRate: SampleRate;
  /** The rate on the wire, where the platform sends more than the recording keeps (L16 24/48 kHz). */
  wireRate?: number;
  durationMs: number;
  /** Legs the stream carries. */
  legs: Leg[];
  /** Peak amplitude of every burst (16-bit PCM), around the sine starting at zero phase. */
  amplitude: number;
  bursts: Burst[];
  dtmf: Array<{ digit: string; atMs: number }>;
  impairments: Impairments;
  /** Speech fixtures: the text spoken on the caller leg, from `startMs`. */
  speech?: { leg: Leg; text: string; startMs: number; durationMs: number };
}

export interface FixtureMessage {
  /** Send offset in ms from the first message. */
  t: number;
  data: Buffer | string;
  binary: boolean;
}

export interface Fixture {
  meta: FixtureMeta;
  messages: FixtureMessage[];
}

function bad(line: number, what: string): CallrecError {
  return new CallrecError('ERR_BAD_FIXTURE', `fixture line ${line}: ${what}`);
}

/** Parses fixture text; throws `ERR_BAD_FIXTURE` naming the line that is wrong. */
export function parseFixture(text: string): Fixture {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) throw bad(1, 'empty');
  let meta: FixtureMeta;
  try {
    meta = (JSON.parse(lines[0]) as { meta: FixtureMeta }).meta;
  } catch {
    throw bad(1, 'not JSON');
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.provider !== 'string') throw bad(1, 'no meta');

  const messages = lines.slice(1).map((line, i): FixtureMessage => {
    let entry: { t?: unknown; text?: unknown; binary?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      throw bad(i + 2, 'not JSON');
    }
    if (typeof entry.t !== 'number') throw bad(i + 2, 't missing');
    if (typeof entry.text === 'string') return { t: entry.t, data: entry.text, binary: false };
    if (typeof entry.binary === 'string')
      return { t: entry.t, data: Buffer.from(entry.binary, 'base64'), binary: true };
    throw bad(i + 2, 'neither text nor binary');
  });
  return { meta, messages };
}

/** Serializes a fixture back to its JSON-lines text (the generator's output format). */
export function formatFixture(fixture: Fixture): string {
  const lines = [JSON.stringify({ meta: fixture.meta })];
  for (const m of fixture.messages) {
    lines.push(
      JSON.stringify(
        m.binary ? { t: m.t, binary: (m.data as Buffer).toString('base64') } : { t: m.t, text: m.data as string },
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function readFixture(path: string): Promise<Fixture> {
  return parseFixture(await readFile(path, 'utf8'));
}
