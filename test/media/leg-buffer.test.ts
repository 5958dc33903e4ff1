import { LegBuffer } from '../../media/leg-buffer.js';
import { decoderFor } from '../../media/codec.js';
import { rng } from '../../bench/rng.js';

/** A frame whose sample values encode their absolute positions, so misplacement shows. */
function frame(position: number, length: number): Int16Array {
  const pcm = new Int16Array(length);
  for (let i = 0; i < length; i++) pcm[i] = ((position + i) % 30000) + 1;
  return pcm;
}

function readAll(buffer: LegBuffer, upTo: number): number[] {
  const out = new Int16Array(upTo - buffer.flushed);
  const n = buffer.read(upTo, out);
  return Array.from(out.subarray(0, n));
}

test('capacity rounds up to a power of two', () => {
  expect(new LegBuffer({ capacity: 1000 }).capacity).toBe(1024);
  expect(new LegBuffer({ capacity: 4096 }).capacity).toBe(4096);
});

test('in-order frames come back in order', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  for (let p = 0; p < 480; p += 160) expect(buffer.write(p, frame(p, 160))).toBe('placed');
  expect(buffer.highWater).toBe(480);
  expect(readAll(buffer, 480)).toEqual(Array.from(frame(0, 480)));
  expect(buffer.flushed).toBe(480);
  expect(buffer.stats).toEqual({ framesPlaced: 3, framesLate: 0, framesDuplicate: 0, framesDropped: 0, gapSamples: 0 });
});

test('a reordered frame within the window is placed where it belongs and counted late', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  expect(buffer.write(0, frame(0, 160))).toBe('placed');
  expect(buffer.write(320, frame(320, 160))).toBe('placed');
  expect(buffer.write(160, frame(160, 160))).toBe('late');
  expect(readAll(buffer, 480)).toEqual(Array.from(frame(0, 480)));
  expect(buffer.stats.framesPlaced).toBe(3);
  expect(buffer.stats.framesLate).toBe(1);
  expect(buffer.stats.gapSamples).toBe(0);
});

test('an exact duplicate is dropped and the first copy kept', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 160));
  expect(buffer.write(0, new Int16Array(160).fill(-5))).toBe('duplicate');
  expect(readAll(buffer, 160)).toEqual(Array.from(frame(0, 160)));
  expect(buffer.stats.framesDuplicate).toBe(1);
  expect(buffer.stats.framesPlaced).toBe(1);
});

test('a frame entirely before flushed is dropped; a partly-late one keeps only its tail', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 160));
  readAll(buffer, 200);
  expect(buffer.write(0, frame(0, 160))).toBe('dropped');
  expect(buffer.write(100, frame(100, 160))).toBe('placed');
  expect(readAll(buffer, 260)).toEqual(Array.from(frame(200, 60)));
  expect(buffer.stats.framesDropped).toBe(1);
});

test('unwritten positions read as silence and are counted', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 160));
  buffer.write(320, frame(320, 160));
  const out = readAll(buffer, 500);
  expect(out.slice(0, 160)).toEqual(Array.from(frame(0, 160)));
  expect(out.slice(160, 320)).toEqual(new Array(160).fill(0));
  expect(out.slice(320, 480)).toEqual(Array.from(frame(320, 160)));
  expect(out.slice(480)).toEqual(new Array(20).fill(0));
  expect(buffer.stats.gapSamples).toBe(180);
});

test('read stops when the output is full and resumes where it stopped', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 300));
  const out = new Int16Array(200);
  expect(buffer.read(300, out)).toBe(200);
  expect(buffer.flushed).toBe(200);
  expect(buffer.read(300, out, 150)).toBe(50);
  expect(Array.from(out.subarray(150))).toEqual(Array.from(frame(200, 50)));
});

test('writing beyond the ring throws and changes nothing', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 160));
  expect(buffer.room).toBe(1024 - 160);
  expect(() => buffer.write(1000, frame(1000, 160))).toThrow(RangeError);
  expect(buffer.highWater).toBe(160);
  expect(buffer.write(864, frame(864, 160))).toBe('placed');
  expect(buffer.room).toBe(0);
  expect(() => buffer.write(0, frame(0, 10), 5, 10)).toThrow(RangeError);
});

test('wraps around many times with fixed memory and exact content', () => {
  const buffer = new LegBuffer({ capacity: 512 });
  const out = new Int16Array(512);
  let position = 0;
  let mismatches = 0;
  // 2000 × 160 samples = 625 capacities; frames go in pairs swapped to exercise reordering across the wrap.
  for (let pair = 0; pair < 1000; pair++) {
    buffer.write(position + 160, frame(position + 160, 160));
    buffer.write(position, frame(position, 160));
    position += 320;
    const from = buffer.flushed;
    const n = buffer.read(position, out);
    for (let i = 0; i < n; i++) if (out[i] !== ((from + i) % 30000) + 1) mismatches++;
  }
  expect(mismatches).toBe(0);
  expect(buffer.flushed).toBe(320_000);
  expect(buffer.capacity).toBe(512);
  expect(buffer.stats).toEqual({
    framesPlaced: 2000,
    framesLate: 1000,
    framesDuplicate: 0,
    framesDropped: 0,
    gapSamples: 0,
  });
});

test('truncate forgets unread samples from a position on', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 480));
  buffer.truncate(200);
  expect(buffer.highWater).toBe(200);
  expect(buffer.write(200, new Int16Array(100).fill(7))).toBe('placed');
  const out = readAll(buffer, 480);
  expect(out.slice(0, 200)).toEqual(Array.from(frame(0, 200)));
  expect(out.slice(200, 300)).toEqual(new Array(100).fill(7));
  expect(out.slice(300)).toEqual(new Array(180).fill(0));
});

test('truncate before flushed only forgets what is unread', () => {
  const buffer = new LegBuffer({ capacity: 1024 });
  buffer.write(0, frame(0, 480));
  readAll(buffer, 160);
  buffer.truncate(0);
  expect(buffer.highWater).toBe(160);
  expect(readAll(buffer, 320)).toEqual(new Array(160).fill(0));
});

test('skip discards without emitting and a start position offsets everything', () => {
  const buffer = new LegBuffer({ capacity: 1024, start: 8000 });
  expect(buffer.write(7840, frame(7840, 160))).toBe('dropped');
  buffer.write(8000, frame(8000, 320));
  expect(buffer.skip(8160)).toBe(160);
  expect(readAll(buffer, 8320)).toEqual(Array.from(frame(8160, 160)));
  expect(buffer.stats.gapSamples).toBe(0);
  // A skip past everything written frees the slots: what lands there later is fresh.
  buffer.write(8320, frame(8320, 160));
  buffer.skip(9000);
  expect(buffer.highWater).toBe(9000);
  expect(buffer.write(9000 + 1024 - 160, frame(0, 160))).toBe('placed');
});

describe('LegBuffer bulk paths', () => {
  const frame = (value: number, n = 4) => new Int16Array(n).fill(value);

  test('a hole closed by a late frame reads back whole, with no gap counted', () => {
    const leg = new LegBuffer({ capacity: 16 });
    leg.write(0, frame(1));
    leg.write(8, frame(3)); // hole at 4..8
    leg.write(4, frame(2)); // late: closes it
    const out = new Int16Array(12);
    expect(leg.read(12, out)).toBe(12);
    expect([...out]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect(leg.stats.gapSamples).toBe(0);
  });

  test('in-order frames across the ring end read back in order, many times round', () => {
    const leg = new LegBuffer({ capacity: 16 });
    const out = new Int16Array(6);
    for (let i = 0; i < 40; i++) {
      leg.write(i * 6, frame(i, 6));
      expect(leg.read((i + 1) * 6, out)).toBe(6);
      expect([...out]).toEqual(Array(6).fill(i));
    }
    expect(leg.stats.gapSamples).toBe(0);
    expect(leg.stats.framesPlaced).toBe(40);
  });

  test('a read reaching into a hole takes the per-sample path and counts the gap', () => {
    const leg = new LegBuffer({ capacity: 16 });
    leg.write(0, frame(1));
    leg.write(6, frame(2));
    const out = new Int16Array(10);
    leg.read(10, out);
    expect([...out]).toEqual([1, 1, 1, 1, 0, 0, 2, 2, 2, 2]);
    expect(leg.stats.gapSamples).toBe(2);
  });
});

describe('writeEncoded', () => {
  // L16 little-endian: the payload is the frame's own bytes, so both paths see the same samples.
  const decode = decoderFor({ codec: 'l16', sampleRate: 8000, byteOrder: 'le' });
  const encode = (pcm: Int16Array) => new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);

  test('places, reorders, drops and wraps exactly as decode-then-write does', () => {
    const direct = new LegBuffer({ capacity: 1024 });
    const viaWrite = new LegBuffer({ capacity: 1024 });
    const scratch = new Int16Array(400);
    // In order, a gap, a late frame, a duplicate, frames that wrap the ring's end, one already flushed.
    const plan = [0, 160, 480, 320, 320, 640, 800, 960, 1120, 1280, 1440, 100, 1600, 1760, 1920, 2080];
    const outcomes: string[] = [];
    for (const position of plan) {
      const pcm = frame(position, 160);
      const outcome = direct.writeEncoded(position, 160, encode(pcm), decode, scratch);
      expect(outcome).toBe(viaWrite.write(position, pcm));
      outcomes.push(outcome);
      const upTo = Math.max(direct.flushed, position - 480);
      expect(readAll(direct, upTo)).toEqual(readAll(viaWrite, upTo));
      expect(direct.highWater).toBe(viaWrite.highWater);
    }
    expect(new Set(outcomes)).toEqual(new Set(['placed', 'late', 'duplicate', 'dropped']));
    expect(readAll(direct, 2240)).toEqual(readAll(viaWrite, 2240));
    expect(direct.stats).toEqual(viaWrite.stats);
    expect(direct.stats.gapSamples).toBe(0);
  });
});

/**
 * The ring against the plainest model of what it promises: a map from position to sample. The
 * ring keeps flags only past its unbroken run of written samples; random writes (in order, late,
 * duplicate, after gaps, across the ring's end), reads, skips and truncates must read back as
 * the model does.
 */
describe('against a model of positions', () => {
  class Model {
    readonly samples = new Map<number, number>();
    flushed = 0;
    highWater = 0;
    gaps = 0;
    write(position: number, pcm: Int16Array): string {
      const end = position + pcm.length;
      if (end <= this.flushed) return 'dropped';
      let fresh = 0;
      for (let at = Math.max(position, this.flushed); at < end; at++) {
        if (!this.samples.has(at)) {
          this.samples.set(at, pcm[at - position]);
          fresh++;
        }
      }
      if (fresh === 0) return 'duplicate';
      if (end <= this.highWater) return 'late';
      this.highWater = end;
      return 'placed';
    }
    read(upTo: number): number[] {
      const out: number[] = [];
      for (; this.flushed < upTo; this.flushed++) {
        out.push(this.samples.get(this.flushed) ?? 0);
        if (!this.samples.has(this.flushed)) this.gaps++;
        this.samples.delete(this.flushed);
      }
      this.highWater = Math.max(this.highWater, this.flushed);
      return out;
    }
    skip(upTo: number): void {
      for (; this.flushed < upTo; this.flushed++) this.samples.delete(this.flushed);
      this.highWater = Math.max(this.highWater, this.flushed);
    }
    truncate(position: number): void {
      const from = Math.max(position, this.flushed);
      if (from >= this.highWater) return;
      for (const at of [...this.samples.keys()]) if (at >= from) this.samples.delete(at);
      this.highWater = from;
    }
  }

  test.each([1, 2, 3, 4, 5, 6])('seed %i: 4000 random operations', (seed) => {
    const random = rng(seed);
    const capacity = 512;
    const ring = new LegBuffer({ capacity });
    const model = new Model();
    const decode = decoderFor({ codec: 'l16', sampleRate: 8000, byteOrder: 'le' });
    const scratch = new Int16Array(capacity);
    for (let op = 0; op < 4000; op++) {
      const r = random();
      if (r < 0.6) {
        const length = 1 + Math.floor(random() * 96);
        // Mostly at high water (in order), else anywhere from just before flushed to the ring's end.
        const room = model.flushed + capacity - length;
        const position =
          random() < 0.6
            ? Math.min(model.highWater, room)
            : Math.min(room, model.flushed - 40 + Math.floor(random() * (capacity + 40)));
        const pcm = frame(position, length);
        const outcome =
          random() < 0.5
            ? ring.write(position, pcm)
            : ring.writeEncoded(position, length, new Uint8Array(pcm.buffer), decode, scratch);
        const expected = model.write(position, pcm);
        if (outcome !== expected) expect({ op, outcome }).toEqual({ op, outcome: expected });
      } else if (r < 0.85) {
        const upTo = model.flushed + Math.floor(random() * (model.highWater - model.flushed + 64));
        const read = readAll(ring, upTo);
        const expected = model.read(upTo);
        if (read.join() !== expected.join()) expect({ op, read }).toEqual({ op, read: expected });
      } else if (r < 0.93) {
        const upTo = model.flushed + Math.floor(random() * 128);
        ring.skip(upTo);
        model.skip(upTo);
      } else {
        const position = model.flushed - 20 + Math.floor(random() * (model.highWater - model.flushed + 40));
        ring.truncate(position);
        model.truncate(position);
      }
      if (ring.flushed !== model.flushed || ring.highWater !== model.highWater) {
        expect({ op, flushed: ring.flushed, highWater: ring.highWater }).toEqual({
          op,
          flushed: model.flushed,
          highWater: model.highWater,
        });
      }
    }
    expect(ring.stats.gapSamples).toBe(model.gaps);
  });
});
