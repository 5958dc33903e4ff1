import { MAX_BUCKETS, WaveformPeaks } from '../../media/peaks.js';

describe('WaveformPeaks', () => {
  test('one bucket per 10 ms of a short recording, each the peak |sample| of its channel, scaled to [0, 1]', () => {
    // 25 ms of stereo at 8 kHz: 80-frame buckets, the last one short.
    const pcm = new Int16Array(200 * 2);
    pcm[2 * 10] = 16384; // left, bucket 0
    pcm[2 * 90 + 1] = -32768; // right, bucket 1: full scale negative
    pcm[2 * 199] = -8192; // left, last frame, bucket 2
    const peaks = new WaveformPeaks(2, 8000, 200);
    peaks.push(pcm.subarray(0, 150)); // chunk boundaries fall anywhere
    peaks.push(pcm.subarray(150));
    expect(peaks.result()).toEqual({
      duration: 0.025,
      peaks: [
        [0.5, 0, 0.25],
        [0, 1, 0],
      ],
    });
  });

  test('rounds to 3 decimals', () => {
    const peaks = new WaveformPeaks(1, 8000, 80);
    peaks.push(new Int16Array([12345]));
    expect(peaks.result().peaks).toEqual([[0.377]]);
  });

  test('a long recording is capped at MAX_BUCKETS per channel, covering all of it', () => {
    const frames = 16000 * 3600; // an hour at 16 kHz
    const peaks = new WaveformPeaks(1, 16000, frames);
    const chunk = new Int16Array(16000 * 60);
    for (let minute = 0; minute < 60; minute++) {
      chunk.fill(0);
      if (minute === 59) chunk[chunk.length - 1] = 32767; // the very last sample
      peaks.push(chunk);
    }
    const {
      duration,
      peaks: [lane],
    } = peaks.result();
    expect(duration).toBe(3600);
    expect(lane).toHaveLength(MAX_BUCKETS);
    expect(lane[MAX_BUCKETS - 1]).toBe(1);
    expect(lane.slice(0, -1).every((peak) => peak === 0)).toBe(true);
  });

  test('an empty recording has no buckets', () => {
    const peaks = new WaveformPeaks(2, 8000, 0);
    peaks.push(new Int16Array(0));
    expect(peaks.result()).toEqual({ duration: 0, peaks: [[], []] });
  });
});
