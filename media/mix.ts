/** Full scale of a 16-bit sample. */
const FULL_SCALE = 32767;
/** Where the limiter starts bending: -3 dBFS. Below it the mix is the plain sum. */
const KNEE = Math.round(FULL_SCALE * 10 ** (-3 / 20));
const HEADROOM = FULL_SCALE - KNEE;

/** Writes `n` frames of `left`/`right` as interleaved stereo (L R L R …) into `out` from `outOffset`. */
export function interleave(left: Int16Array, right: Int16Array, out: Int16Array, n: number, outOffset = 0): void {
  for (let i = 0, o = outOffset; i < n; i++, o += 2) {
    out[o] = left[i];
    out[o + 1] = right[i];
  }
}

/**
 * Stateless soft limiter for a sum of two 16-bit samples: the identity up to the knee (-3 dBFS),
 * then a tanh curve with slope 1 at the knee that approaches full scale asymptotically. A sum of
 * two full-scale samples (±65536) maps to ±32764, so the result never reaches ±32767 and keeps
 * its order (monotonic). Stateless rather than a gain-riding compressor so that any chunk of the
 * spool mixes the same regardless of what came before it.
 */
export function softLimit(sum: number): number {
  const magnitude = Math.abs(sum);
  if (magnitude <= KNEE) return sum;
  const limited = Math.round(KNEE + HEADROOM * Math.tanh((magnitude - KNEE) / HEADROOM));
  return sum < 0 ? -limited : limited;
}

/**
 * Mixes `frames` interleaved stereo frames to mono in `out`: the legs are summed (so a lone
 * talker keeps their level) and the sum soft-limited instead of clipped.
 */
export function downmix(stereo: Int16Array, out: Int16Array, frames: number): void {
  for (let i = 0, s = 0; i < frames; i++, s += 2) out[i] = softLimit(stereo[s] + stereo[s + 1]);
}
