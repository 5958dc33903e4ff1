import opus from '@discordjs/opus';
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

/**
 * Encodes interleaved PCM into 20 ms Opus packets and adds them to `target`. Node has no
 * WebCodecs AudioEncoder, so mediabunny cannot encode Opus itself; libopus (via
 * @discordjs/opus) does it and mediabunny only muxes the packets into Ogg.
 */
export async function addOpusPackets(
  target: EncodedAudioPacketSource,
  sampleRate: number,
  channels: 1 | 2,
  chunks: AsyncIterable<Int16Array>,
): Promise<void> {
  const encoder = new opus.OpusEncoder(sampleRate, channels);
  encoder.setBitrate(BITRATE_PER_CHANNEL[sampleRate] * channels);
  encoder.applyEncoderCTL(OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE);

  const frameSamples = (sampleRate * FRAME_MS) / 1000;
  const frame = new Int16Array(frameSamples * channels);
  // A view, not a copy: the encoder reads s16 in host byte order, which is little-endian on every Node platform.
  const frameBytes = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const frameSeconds = FRAME_MS / 1000;
  let filled = 0;
  let packets = 0;

  const emit = async (durationSeconds: number) => {
    const packet = new EncodedPacket(encoder.encode(frameBytes), 'key', packets * frameSeconds, durationSeconds);
    if (packets === 0) {
      await target.add(packet, {
        decoderConfig: { codec: 'opus', numberOfChannels: channels, sampleRate: OPUS_RATE, description: opusHead(channels, sampleRate) },
      });
    } else {
      await target.add(packet);
    }
    packets++;
  };

  const push = async (pcm: Int16Array) => {
    let read = 0;
    while (read < pcm.length) {
      const take = Math.min(pcm.length - read, frame.length - filled);
      frame.set(pcm.subarray(read, read + take), filled);
      filled += take;
      read += take;
      if (filled === frame.length) {
        await emit(frameSeconds);
        filled = 0;
      }
    }
  };

  for await (const chunk of chunks) await push(chunk);
  // The encoder's output lags its input by the pre-skip: feed that much silence so the end of the
  // input comes out too (the decoder drops the same amount from the start, so nothing shifts).
  await push(new Int16Array(((PRE_SKIP * sampleRate) / OPUS_RATE) * channels));
  if (filled > 0) {
    // Pad the last frame with silence; its shorter duration tells the muxer to trim the padding on decode.
    frame.fill(0, filled);
    await emit(filled / channels / sampleRate);
  }
}
