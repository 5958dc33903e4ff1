import { registerMp3Encoder } from '@mediabunny/mp3-encoder';
import { AudioSampleSource, Mp3OutputFormat, NullTarget, Output, Quality } from 'mediabunny';
import { MediaError } from '../errors.js';
import type { EncodedChunk, PcmSource } from '../types.js';
import {
  checkFrame,
  findJoin,
  infoFrame,
  infoFrameBytes,
  joinAt,
  mp3Layout,
  MP3_FRAME_SAMPLES,
  reservoirFrames,
  type Mp3Layout,
} from './mp3-frame.js';
import { addPcm } from './pcm-samples.js';

/** MP3 bits per second per channel: 8 kHz is MPEG-2.5 and 16 kHz MPEG-2, both plenty for speech at these rates. */
const BITRATE_PER_CHANNEL: Record<number, number> = { 8000: 16_000, 16000: 24_000 };

// Parallel encoding. LAME in WASM runs at a few hundred times real time on one core, so a long
// call would wait seconds for its file. A recording of known length is cut into parts, one LAME
// per part (each in its own worker thread), and the parts' frames are joined where two encodings
// of the same audio can swap without a seam (see `findJoin`). Each part but the first starts a
// little early, so its encoder is warm at the join, and each but the last runs a little past it,
// so the join has candidates to choose from.

/** Frames a later part encodes before the earliest frame it may have to supply: LAME's state (psychoacoustic history, reservoir) settles in a few dozen. */
const WARM_UP_FRAMES = 32;
/** Frames after a part boundary where the join may fall. */
const JOIN_CANDIDATES = 32;
/** Frames an earlier part encodes past the last candidate, so LAME's lookahead sees real audio there. */
const LOOKAHEAD_FRAMES = 4;
/** Shortest part worth its own encoder. */
const MIN_PART_SECONDS = 30;
/** Frames per positioned write. */
const WRITE_FRAMES = 32;

let registered = false;

/** Frames either side of one part boundary, from the encoders of both parts, for the join. */
interface Join {
  /** Global index of the first frame held. */
  start: number;
  left: Uint8Array[];
  right: Uint8Array[];
}

/**
 * One encoder's share of the recording, in global frame indices: an encoder whose input starts
 * at sample 576 × k makes frame k + n of the file as its n-th frame.
 */
interface Part {
  input: AsyncIterable<Int16Array>;
  /** Global index of the encoder's first frame: its input starts at that frame's samples. */
  firstFrame: number;
  /** Frames [bodyStart, bodyEnd) this part writes itself. */
  bodyStart: number;
  bodyEnd: number;
  /** The join before the body, which this part's frames enter on the right. */
  head?: Join;
  /** The join after the body, which this part's frames enter on the left. */
  tail?: Join;
}

/** Splits `input` into at most `threads` parts, with a {@link Join} between each two. */
function plan(input: PcmSource, threads: number, layout: Mp3Layout): Part[] {
  if (!('frames' in input)) return [{ input: input.chunks, firstFrame: 0, bodyStart: 0, bodyEnd: Infinity }];
  const { frames } = input;
  const count = Math.max(1, Math.min(threads, Math.floor(frames / (MIN_PART_SECONDS * layout.sampleRate))));
  const mp3Frames = Math.ceil(frames / MP3_FRAME_SAMPLES);
  const held = reservoirFrames(layout);
  const joins = Array.from(
    { length: count - 1 },
    (_, j): Join => ({
      start: Math.round(((j + 1) * mp3Frames) / count) - held,
      left: [],
      right: [],
    }),
  );
  return Array.from({ length: count }, (_, k): Part => {
    const head = joins[k - 1];
    const tail = joins[k];
    const firstFrame = head ? head.start - WARM_UP_FRAMES : 0;
    const end = tail ? (tail.start + held + JOIN_CANDIDATES + LOOKAHEAD_FRAMES) * MP3_FRAME_SAMPLES : frames;
    return {
      input: input.read(firstFrame * MP3_FRAME_SAMPLES, Math.min(end, frames)),
      firstFrame,
      bodyStart: head ? head.start + held + JOIN_CANDIDATES : 0,
      bodyEnd: tail ? tail.start : Infinity,
      head,
      tail,
    };
  });
}

/** The MP3 frames LAME makes of `chunks`, one per 576 samples (plus its delay), in order. */
async function* lameFrames(
  chunks: AsyncIterable<Int16Array>,
  sampleRate: number,
  channels: 1 | 2,
): AsyncGenerator<Uint8Array> {
  if (!registered) {
    // Node has no native MP3 encoder for mediabunny to prefer, so LAME (WASM) is always the one.
    registerMp3Encoder();
    registered = true;
  }
  const frames: Uint8Array[] = [];
  const samples = new AudioSampleSource({
    codec: 'mp3',
    quality: new Quality({ bitrate: BITRATE_PER_CHANNEL[sampleRate] * channels }),
    onEncodedPacket: (packet) => void frames.push(packet.data),
  });
  // The muxer only drives the encoder; the frames are taken from it packet by packet.
  const output = new Output({ format: new Mp3OutputFormat({ xingHeader: false }), target: new NullTarget() });
  output.addAudioTrack(samples);
  await output.start();
  let added = false;
  let finalized = false;
  try {
    for await (const _ of addPcm(samples, sampleRate, channels, chunks)) {
      added = true;
      yield* frames.splice(0);
    }
    // An output that got no audio cannot finalize (it would have no frame to write): there are none.
    if (added) await output.finalize();
    finalized = added;
    yield* frames.splice(0);
  } finally {
    if (!finalized) await output.cancel().catch(() => {});
  }
}

/**
 * Encodes one part, writing its body and handing the frames around its joins to them. Returns
 * the index after its last frame, and where its input ended (in samples from the recording's start).
 */
async function encodePart(
  part: Part,
  layout: Mp3Layout,
  offset: number,
  write: (chunk: EncodedChunk) => Promise<void>,
): Promise<{ frames: number; samples: number }> {
  let samples = part.firstFrame * MP3_FRAME_SAMPLES;
  async function* counted(): AsyncGenerator<Int16Array> {
    for await (const chunk of part.input) {
      samples += chunk.length / layout.channels;
      yield chunk;
    }
  }
  let index = part.firstFrame;
  let batch: Uint8Array[] = [];
  let batchStart = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const data = Buffer.concat(batch);
    batch = [];
    await write({ position: offset + batchStart * layout.frameBytes, data });
  };
  const span = reservoirFrames(layout) + JOIN_CANDIDATES;
  for await (const frame of lameFrames(counted(), layout.sampleRate, layout.channels)) {
    checkFrame(frame, layout);
    if (index >= part.bodyStart && index < part.bodyEnd) {
      if (batch.length === 0) batchStart = index;
      batch.push(frame);
      if (batch.length === WRITE_FRAMES) await flush();
    } else if (part.head && index >= part.head.start && index < part.head.start + span) {
      part.head.right[index - part.head.start] = frame;
    } else if (part.tail && index >= part.tail.start && index < part.tail.start + span) {
      part.tail.left[index - part.tail.start] = frame;
    }
    index++;
  }
  await flush();
  return { frames: index, samples };
}

/** The frames of one join, the two encodings joined where they can be. @throws MediaError `ERR_MP3_JOIN` */
function joined(join: Join, layout: Mp3Layout, offset: number): EncodedChunk {
  const held = reservoirFrames(layout);
  const span = held + JOIN_CANDIDATES;
  if (join.left.length !== span || join.right.length !== span)
    throw new MediaError('ERR_MP3_JOIN', `an MP3 part ended before its join at frame ${join.start}`);
  const candidates = Array.from({ length: JOIN_CANDIDATES }, (_, i) => held + i);
  const at = findJoin(join.left, join.right, candidates, layout.channels);
  if (at < 0)
    throw new MediaError('ERR_MP3_JOIN', `no seamless join between MP3 parts near frame ${join.start + held}`);
  const data = new Uint8Array(span * layout.frameBytes);
  joinAt(join.left, join.right, at, layout, data);
  return { position: offset + join.start * layout.frameBytes, data };
}

/**
 * Encodes PCM to CBR MP3 with LAME, in up to `threads` parts at once when the input's length is
 * known, yielding positioned writes: a leading Info frame (written last, with the frame count,
 * seek table and gapless delay and padding), then the frames. Encoding advances only as fast as the consumer pulls.
 * @throws MediaError `ERR_MP3_JOIN` if two parts found no seamless join (encode again with
 * `threads` 1), `ERR_MP3_FRAME` if LAME wrote an unexpected frame.
 */
export async function* encodeMp3(input: PcmSource, threads: number): AsyncGenerator<EncodedChunk> {
  const layout = mp3Layout(input.sampleRate, input.channels, BITRATE_PER_CHANNEL[input.sampleRate] * input.channels);
  const offset = infoFrameBytes(layout);
  const parts = plan(input, threads, layout);
  // One stream carries every part's writes to the consumer; a part's write resolves only once the
  // consumer has taken it, which paces each part to the consumer.
  const pipe = new TransformStream<EncodedChunk, EncodedChunk>();
  const writer = pipe.writable.getWriter();
  const write = (chunk: EncodedChunk) => writer.write(chunk);
  const production = (async () => {
    const ends = await Promise.allSettled(
      parts.map((part) =>
        encodePart(part, layout, offset, write).catch((err: unknown) => {
          // The first failure stops the other parts at their next write.
          void writer.abort(err).catch(() => {});
          throw err;
        }),
      ),
    );
    const failed = ends.find((end) => end.status === 'rejected');
    if (failed) throw failed.reason;
    for (const part of parts) if (part.tail) await write(joined(part.tail, layout, offset));
    // The last part reads to the end: its frames and samples are the recording's.
    const { frames, samples } = (ends[ends.length - 1] as PromiseFulfilledResult<{ frames: number; samples: number }>)
      .value;
    await write({ position: 0, data: infoFrame(layout, frames, samples) });
    await writer.close();
  })().catch(async (err: unknown) => {
    await writer.abort(err).catch(() => {});
  });
  try {
    yield* pipe.readable;
  } finally {
    await production;
  }
}
