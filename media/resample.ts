/**
 * Sample-rate conversion for speech: a Kaiser-windowed sinc low-pass, evaluated as a polyphase
 * filter bank for the exact rational ratio between the rates. Hand-written because the
 * libraries at hand only resample inside a decode/encode pipeline (mediabunny) or not at all,
 * and prompts need plain PCM in, plain PCM out.
 */

/** Stop-band attenuation the filter is designed for. */
const STOPBAND_DB = 80;
const KAISER_BETA = 0.1102 * (STOPBAND_DB - 8.7);
/**
 * The pass band ends at this fraction of the lower Nyquist frequency (3.4 of 4 kHz at 8 kHz:
 * the telephone band) and the stop band starts at Nyquist itself, so nothing that would fold
 * back survives.
 */
const PASSBAND_EDGE = 0.85;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for β ≈ 8). */
function besselI0(x: number): number {
  const q = (x / 2) ** 2;
  let sum = 1;
  let term = 1;
  for (let k = 1; term > sum * 1e-12; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

/** The anti-aliasing / anti-imaging kernel, in units of input samples. */
interface Kernel {
  /** Half-amplitude cutoff, cycles per input sample. */
  cutoff: number;
  /** Taps on each side of the centre. */
  halfWidth: number;
}

function designKernel(fromRate: number, toRate: number): Kernel {
  const nyquist = 0.5 * Math.min(1, toRate / fromRate); // lower Nyquist, cycles per input sample
  const transition = nyquist * (1 - PASSBAND_EDGE);
  // Kaiser's estimate of the length needed for STOPBAND_DB over this transition width.
  const taps = (STOPBAND_DB - 7.95) / (2.285 * 2 * Math.PI * transition);
  return { cutoff: nyquist - transition / 2, halfWidth: Math.ceil(taps / 2) };
}

/**
 * Coefficients for an output sample that falls `frac` (0 ≤ frac < 1) of an input sample after
 * input sample `i`; coefficient `m` weights input sample `i - halfWidth + 1 + m`. Normalised to
 * unit sum so every phase passes DC exactly.
 */
function phaseRow({ cutoff, halfWidth }: Kernel, frac: number): Float64Array {
  const row = new Float64Array(2 * halfWidth);
  const norm = besselI0(KAISER_BETA);
  let sum = 0;
  for (let m = 0; m < row.length; m++) {
    const t = frac + halfWidth - 1 - m; // distance from the output instant, in input samples
    const x = 2 * cutoff * t;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const r = t / halfWidth;
    const window = r * r >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / norm;
    row[m] = sinc * window;
    sum += row[m];
  }
  for (let m = 0; m < row.length; m++) row[m] /= sum;
  return row;
}

/**
 * Converts mono 16-bit PCM from `fromRate` to `toRate` (positive integers, Hz). The result has
 * `round(pcm.length × toRate / fromRate)` samples; input beyond either end counts as silence.
 * Returns `pcm` itself when the rates are equal.
 */
export function resample(pcm: Int16Array, fromRate: number, toRate: number): Int16Array {
  for (const rate of [fromRate, toRate]) {
    if (!Number.isInteger(rate) || rate <= 0)
      throw new RangeError(`sample rate must be a positive integer, got ${rate}`);
  }
  if (fromRate === toRate) return pcm;
  const g = gcd(fromRate, toRate);
  const up = toRate / g; // output sample j sits at input position j × down / up
  const down = fromRate / g;
  const kernel = designKernel(fromRate, toRate);
  // One row per phase, built on first use: an odd ratio (e.g. 22050 → 8000 has 160 phases)
  // never builds more rows than it has output samples.
  const rows: Array<Float64Array | undefined> = new Array(up);
  const out = new Int16Array(Math.round((pcm.length * toRate) / fromRate));
  let base = 0; // floor(j × down / up)
  let phase = 0; // (j × down) mod up
  for (let j = 0; j < out.length; j++) {
    const row = (rows[phase] ??= phaseRow(kernel, phase / up));
    const first = base - kernel.halfWidth + 1;
    let acc = 0;
    const mStart = Math.max(0, -first);
    const mEnd = Math.min(row.length, pcm.length - first);
    for (let m = mStart; m < mEnd; m++) acc += row[m] * pcm[first + m];
    out[j] = Math.max(-32768, Math.min(32767, Math.round(acc)));
    phase += down;
    base += Math.floor(phase / up);
    phase %= up;
  }
  return out;
}

/**
 * `resample`'s filter fed frame by frame, for a live stream whose wire rate is not the
 * recording's (L16 at 24 or 48 kHz → 16 kHz). Output sample j is emitted once the input its
 * kernel reaches has arrived, so the output trails the input by about half the kernel (≈ 2 ms);
 * `emitted` says where each push's output starts, which keeps positions exact. After the first
 * frames of a size, a push allocates nothing: input history and output live in scratch memory.
 */
export class StreamResampler {
  readonly #up: number;
  readonly #down: number;
  readonly #halfWidth: number;
  readonly #rows: Float64Array[];
  /** Input samples from absolute index `#bufStart` on; index < 0 is the silence before the stream. */
  #buf: Int16Array;
  #bufStart: number;
  #bufLength: number;
  #out = new Int16Array(0);
  #view = this.#out;
  /** What `flush` feeds the filter to complete its last outputs. */
  readonly #silence: Int16Array;
  /** Input samples pushed so far. */
  #received = 0;
  /** Output samples produced so far: the index of the next push's first output sample. */
  #emitted = 0;
  /** floor(#emitted × down / up) and (#emitted × down) mod up. */
  #base = 0;
  #phase = 0;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
  ) {
    for (const rate of [fromRate, toRate]) {
      if (!Number.isInteger(rate) || rate <= 0)
        throw new RangeError(`sample rate must be a positive integer, got ${rate}`);
    }
    const g = gcd(fromRate, toRate);
    this.#up = toRate / g;
    this.#down = fromRate / g;
    const kernel = designKernel(fromRate, toRate);
    this.#halfWidth = kernel.halfWidth;
    this.#rows = Array.from({ length: this.#up }, (_, phase) => phaseRow(kernel, phase / this.#up));
    // The silence before the first sample, which the first outputs' kernels reach into.
    this.#bufStart = -(kernel.halfWidth - 1);
    this.#bufLength = kernel.halfWidth - 1;
    this.#buf = new Int16Array(4 * kernel.halfWidth + 1024);
    this.#silence = new Int16Array(kernel.halfWidth);
  }

  /**
   * Ends a stretch of audio (a reply the runtime finished): returns the output still held back
   * for the filter's look-ahead, computed with silence after the input, and starts afresh.
   */
  flush(): Int16Array {
    const tail = this.push(this.#silence);
    this.#bufStart = -(this.#halfWidth - 1);
    this.#bufLength = this.#halfWidth - 1;
    this.#buf.fill(0, 0, this.#bufLength);
    this.#received = this.#emitted = this.#base = this.#phase = 0;
    return tail;
  }

  /** Input samples pushed so far. */
  get received(): number {
    return this.#received;
  }

  /** Output samples produced so far. */
  get emitted(): number {
    return this.#emitted;
  }

  /** The output `input` completes: a view of scratch memory, valid until the next push. */
  push(input: Int16Array): Int16Array {
    this.#append(input);
    const halfWidth = this.#halfWidth;
    const out = this.#room(this.#countReady(this.#received - 1));
    const buf = this.#buf;
    for (let j = 0; j < out.length; j++) {
      const row = this.#rows[this.#phase];
      const first = this.#base - halfWidth + 1 - this.#bufStart;
      let acc = 0;
      for (let m = 0; m < row.length; m++) acc += row[m] * buf[first + m];
      out[j] = acc >= 32767 ? 32767 : acc <= -32768 ? -32768 : Math.round(acc);
      this.#phase += this.#down;
      this.#base += Math.floor(this.#phase / this.#up);
      this.#phase %= this.#up;
    }
    this.#emitted += out.length;
    this.#discard(this.#base - halfWidth + 1);
    return out;
  }

  /** How many outputs are ready: those whose kernel's last input sample (base + halfWidth) has arrived. */
  #countReady(last: number): number {
    let n = 0;
    while (this.#base + Math.floor((this.#phase + n * this.#down) / this.#up) + this.#halfWidth <= last) n++;
    return n;
  }

  #append(input: Int16Array): void {
    const need = this.#bufLength + input.length;
    if (need > this.#buf.length) {
      const grown = new Int16Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#bufLength));
      this.#buf = grown;
    }
    this.#buf.set(input, this.#bufLength);
    this.#bufLength = need;
    this.#received += input.length;
  }

  /** Drops input before absolute index `keepFrom`: no output needs it any more. */
  #discard(keepFrom: number): void {
    const drop = keepFrom - this.#bufStart;
    if (drop <= 0) return;
    this.#buf.copyWithin(0, drop, this.#bufLength);
    this.#bufLength -= drop;
    this.#bufStart = keepFrom;
  }

  #room(samples: number): Int16Array {
    if (samples === this.#view.length) return this.#view;
    if (samples > this.#out.length) this.#out = new Int16Array(Math.max(samples, this.#out.length * 2));
    this.#view = this.#out.subarray(0, samples);
    return this.#view;
  }
}
