import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { EncodedPacket } from 'mediabunny';
import type { EncodedAudioPacketSource } from 'mediabunny';

/** Opus always runs at 48 kHz internally; Ogg granule positions and pre-skip count in it. */
const OPUS_RATE = 48_000;
const FRAME_MS = 20;
/** libopus encoder lookahead (2.5 ms + 4 ms delay compensation) at 48 kHz, for every input rate. */
const PRE_SKIP = 312;
// opus_defines.h: OPUS_SET_SIGNAL_REQUEST / OPUS_SIGNAL_VOICE.
const OPUS_SET_SIGNAL = 4024;
const OPUS_SIGNAL_VOICE = 3001;

/** Bits per second per channel: narrowband/wideband speech is transparent well below music rates. */
const BITRATE_PER_CHANNEL: Record<number, number> = { 8000: 12_000, 16000: 16_000 };

/** The Ogg Opus identification header (RFC 7845 §5.1), which the muxer needs as the decoder description. */
function opusHead(channels: number, inputSampleRate: number): Uint8Array {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1; // version
  head[9] = channels;
  head.writeUInt16LE(PRE_SKIP, 10);
  head.writeUInt32LE(inputSampleRate, 12);
  head.writeInt16LE(0, 16); // output gain
  head[18] = 0; // channel mapping family 0: mono or L/R stereo
  return head;
}

/** Audio per message to the encoder thread: few enough messages to cost nothing, small enough to stream. */
const BATCH_FRAMES = 50;

// Runs in the encoder thread as CommonJS (a worker cannot load this TypeScript module under the
// test runner); kept to libopus's synchronous calls. Batches come in order and go back in order.
const OPUS_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { OpusEncoder } = require(workerData.addon);
const encoder = new OpusEncoder(workerData.sampleRate, workerData.channels);
encoder.setBitrate(workerData.bitrate);
encoder.applyEncoderCTL(${OPUS_SET_SIGNAL}, ${OPUS_SIGNAL_VOICE});
const frameBytes = workerData.frameLength * 2;
parentPort.on('message', (pcm) => {
  if (pcm === null) return parentPort.close(); // nothing left to do: the thread ends
  // A view, not a copy: the encoder reads s16 in host byte order, little-endian on every Node platform.
  const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const packets = [];
  for (let at = 0; at < bytes.length; at += frameBytes) packets.push(encoder.encode(bytes.subarray(at, at + frameBytes)));
  parentPort.postMessage(packets);
});
`;

/**
 * libopus in a thread of its own: it encodes synchronously, about 0.1 ms per 20 ms frame here, and
 * on the calling thread a long call's encode held the event loop (and with it every live call's
 * media, when the worker runs inside `callrec serve`) in 2–5 ms stretches for seconds on end.
 */
class OpusThread {
  readonly #worker: Worker;
  readonly #waiting: Array<{ resolve(packets: Uint8Array[]): void; reject(err: Error): void }> = [];
  readonly #exited: Promise<void>;
  #failure: Error | null = null;

  constructor(sampleRate: number, channels: 1 | 2, frameLength: number) {
    const addon = createRequire(import.meta.url).resolve('@discordjs/opus');
    const bitrate = BITRATE_PER_CHANNEL[sampleRate] * channels;
    this.#worker = new Worker(OPUS_THREAD, {
      eval: true,
      workerData: { addon, sampleRate, channels, bitrate, frameLength },
    });
    this.#worker.on('message', (packets: Uint8Array[]) => this.#waiting.shift()?.resolve(packets));
    const fail = (err: Error) => {
      this.#failure ??= err;
      for (const w of this.#waiting.splice(0)) w.reject(this.#failure);
    };
    this.#worker.on('error', fail);
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', (code) => {
        fail(new Error(`the Opus encoder thread stopped (exit code ${code})`));
        resolve();
      }),
    );
  }

  /** Encodes whole frames of interleaved PCM, one packet each. `pcm`'s memory moves to the thread. */
  encode(pcm: Int16Array): Promise<Uint8Array[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage(pcm, [pcm.buffer as ArrayBuffer]);
    });
  }

  /**
   * Lets the thread finish the batches it was given, then end. Not `terminate()`: a thread stopped
   * inside libopus's encode throws in an environment that is going away, and Node aborts the whole
   * process (seen: `FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw`).
   */
  close(): Promise<void> {
    this.#failure ??= new Error('the Opus encoder thread was closed');
    this.#worker.postMessage(null);
    return this.#exited;
  }
}

/**
 * Encodes interleaved PCM into 20 ms Opus packets and adds them to `target`. Node has no
 * WebCodecs AudioEncoder, so mediabunny cannot encode Opus itself; libopus (via
 * @discordjs/opus, in a thread: see `OpusThread`) does it and mediabunny only muxes the packets
 * into Ogg. Two batches are in flight at once, so muxing here overlaps encoding there.
 */
export async function addOpusPackets(
  target: EncodedAudioPacketSource,
  sampleRate: number,
  channels: 1 | 2,
  chunks: AsyncIterable<Int16Array>,
): Promise<void> {
  const frameLength = ((sampleRate * FRAME_MS) / 1000) * channels;
  const frameSeconds = FRAME_MS / 1000;
  const encoder = new OpusThread(sampleRate, channels, frameLength);
  const inFlight: Array<Promise<Uint8Array[]>> = [];
  const batchLength = BATCH_FRAMES * frameLength;
  let batch = new Int16Array(batchLength);
  let filled = 0;
  let packets = 0;

  /** Muxes the oldest batch in flight; its last packet lasts `lastSeconds`. */
  const mux = async (lastSeconds = frameSeconds) => {
    const encoded = await inFlight.shift()!;
    for (let i = 0; i < encoded.length; i++) {
      const duration = i === encoded.length - 1 ? lastSeconds : frameSeconds;
      const packet = new EncodedPacket(encoded[i], 'key', packets * frameSeconds, duration);
      if (packets === 0) {
        await target.add(packet, {
          decoderConfig: {
            codec: 'opus',
            numberOfChannels: channels,
            sampleRate: OPUS_RATE,
            description: opusHead(channels, sampleRate),
          },
        });
      } else {
        await target.add(packet);
      }
      packets++;
    }
  };
  const send = async () => {
    inFlight.push(encoder.encode(batch.subarray(0, filled)));
    batch = new Int16Array(batchLength); // the last one's memory went to the thread
    filled = 0;
    if (inFlight.length > 1) await mux();
  };
  const push = async (pcm: Int16Array) => {
    for (let read = 0; read < pcm.length; ) {
      const take = Math.min(pcm.length - read, batchLength - filled);
      batch.set(pcm.subarray(read, read + take), filled);
      filled += take;
      read += take;
      if (filled === batchLength) await send();
    }
  };

  try {
    for await (const chunk of chunks) await push(chunk);
    // The encoder's output lags its input by the pre-skip: feed that much silence so the end of the
    // input comes out too (the decoder drops the same amount from the start, so nothing shifts).
    await push(new Int16Array(((PRE_SKIP * sampleRate) / OPUS_RATE) * channels));
    // The last frame is padded with silence; its shorter duration tells the muxer to trim the padding on decode.
    const partial = filled % frameLength;
    const lastSeconds = partial === 0 ? frameSeconds : partial / channels / sampleRate;
    if (partial > 0) filled += frameLength - partial; // the batch is zeroed past `filled`
    if (filled > 0) await send();
    while (inFlight.length > 1) await mux();
    if (inFlight.length > 0) await mux(lastSeconds);
  } finally {
    // A failure elsewhere leaves batches in flight: their promises must not go unhandled.
    for (const pending of inFlight) pending.catch(() => {});
    await encoder.close();
  }
}
