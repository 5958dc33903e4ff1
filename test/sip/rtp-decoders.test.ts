import opus from '@discordjs/opus';
import { G722Encoder } from '../../media/g722.js';
import { refusal, rtpDecoder } from '../../src/sip/rtp-decoders.js';
import { findBursts, synthesizeTones } from '../helpers/audio.js';

/** Runs 20 ms payloads through a stream's decoder; returns the call's samples placed by position, and the ticks each covered. */
function decodeStream(
  format: { name: string; clockRate: number; channels: number },
  payloads: Buffer[],
  ticksPerPacket: number,
) {
  const decoder = rtpDecoder(format);
  const rate = decoder.format.sampleRate;
  const out = new Int16Array(rate * (payloads.length / 50 + 1));
  const ticks: number[] = [];
  payloads.forEach((payload, i) => {
    const bytes = decoder.decode(payload);
    ticks.push(decoder.ticks);
    const positionMs = (i * ticksPerPacket * 1000) / format.clockRate - decoder.lagMs;
    const samples = new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const at = Math.round((positionMs * rate) / 1000);
    for (let s = 0; s < samples.length; s++) if (at + s >= 0) out[at + s] = samples[s];
  });
  return { decoder, samples: Float32Array.from(out, (s) => s / 32768), ticks };
}

const TONE = [[0, 1000, 200, 700]] as const;

test('G.722 (clock 8000, audio 16 kHz), Opus (48 kHz clock, decoded at 16 kHz) and L16 at 48 kHz reach the call as 16 kHz L16 with the tone where it was sent', () => {
  const g722 = new G722Encoder();
  const pcm16 = synthesizeTones(16000, 1, 1, TONE);
  const opusEncoder = new opus.OpusEncoder(48000, 2);
  const pcm48 = synthesizeTones(48000, 2, 1, [...TONE, [1, 1000, 200, 700]]);
  const pcm48mono = synthesizeTones(48000, 1, 1, TONE);
  const cases = [
    {
      format: { name: 'G722', clockRate: 8000, channels: 1 },
      ticks: 160,
      payloads: Array.from({ length: 50 }, (_, i) => g722.encode(pcm16.subarray(i * 320, (i + 1) * 320))),
    },
    {
      format: { name: 'OPUS', clockRate: 48000, channels: 2 },
      ticks: 960,
      payloads: Array.from({ length: 50 }, (_, i) =>
        opusEncoder.encode(Buffer.from(pcm48.buffer, i * 960 * 4, 960 * 4)),
      ),
    },
    {
      format: { name: 'L16', clockRate: 48000, channels: 1 },
      ticks: 960,
      payloads: Array.from({ length: 50 }, (_, i) => {
        const b = Buffer.alloc(960 * 2);
        for (let s = 0; s < 960; s++) b.writeInt16BE(pcm48mono[i * 960 + s], 2 * s);
        return b;
      }),
    },
  ];
  for (const { format, ticks, payloads } of cases) {
    expect(refusal(format)).toBeNull();
    const { decoder, samples, ticks: covered } = decodeStream(format, payloads, ticks);
    expect(decoder.format).toMatchObject({ codec: 'l16', sampleRate: 16000 });
    expect(covered.every((t) => t === ticks)).toBe(true);
    const [burst, ...rest] = findBursts(samples, 16000, 1000);
    expect(rest).toEqual([]);
    expect(Math.abs(burst.startMs - 200)).toBeLessThanOrEqual(1);
    expect(Math.abs(burst.endMs - 700)).toBeLessThanOrEqual(1);
  }
});

test('G.711 and L16 at 8/16 kHz pass through as they are (L16 big-endian, as RTP sends it)', () => {
  const payload = Buffer.from([1, 2, 3, 4]);
  const pcmu = rtpDecoder({ name: 'PCMU', clockRate: 8000, channels: 1 });
  expect(pcmu.format).toEqual({ codec: 'pcmu', sampleRate: 8000 });
  expect(pcmu.decode(payload)).toBe(payload);
  expect(pcmu.ticks).toBe(4);
  const l16 = rtpDecoder({ name: 'L16', clockRate: 16000, channels: 1 });
  expect(l16.format).toEqual({ codec: 'l16', sampleRate: 16000, byteOrder: 'be' });
  expect(l16.decode(payload)).toBe(payload);
  expect(l16.ticks).toBe(2);
});

test('formats callrec does not decode are refused with a reason', () => {
  expect(refusal({ name: 'L16', clockRate: 16000, channels: 2 })).toMatch(/mono only/);
  expect(refusal({ name: 'L16', clockRate: 44100, channels: 1 })).toMatch(/44100/);
  expect(refusal({ name: 'OPUS', clockRate: 16000, channels: 1 })).toMatch(/48000/);
  expect(refusal({ name: 'G722', clockRate: 16000, channels: 1 })).toMatch(/8000/);
  expect(refusal({ name: 'G729', clockRate: 8000, channels: 1 })).toMatch(/G729 is not decoded/);
  expect(refusal({ name: 'PCMA', clockRate: 8000, channels: 1 })).toBeNull();
});

test('a corrupt Opus packet decodes to nothing and covers no ticks', () => {
  const decoder = rtpDecoder({ name: 'OPUS', clockRate: 48000, channels: 2 });
  expect(decoder.decode(Buffer.from([0xff, 0xff, 0xff])).length).toBe(0);
  expect(decoder.ticks).toBe(0);
});
