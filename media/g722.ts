/*
 * ITU-T G.722 (SB-ADPCM, 64 kbit/s mode: 6-bit low band, 2-bit high band) for 16 kHz audio,
 * one byte per pair of samples. Hand-written because npm has no maintained pure decoder (the
 * packages there wrap native builds of spandsp's g722.c); it follows the ITU block diagram and
 * matches spandsp's g722.c (the usual reference, itself derived from CMU's) sample for sample.
 * The encoder exists to generate test audio.
 */

/** Log-scale adaptation of the low band by its 4-bit code (Block 3L: WL via RIL). */
const WL = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42 = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/** Inverse log-scale table (Block 3L/3H, ILB). */
const ILB = [
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
  3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const WH = [0, -214, 798];
const RH2 = [2, 1, 2, 1];
/** Inverse quantizers: high band (2 bits), low band predictor path (4 bits), low band output (6 bits). */
const QM2 = [-7408, -1616, 7408, 1616];
const QM4 = [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
const QM6 = [
  -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
  -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808,
  21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008,
  3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/** The 24-tap QMF, half of it (symmetric). */
const QMF = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/** Encoder: low band decision levels (Block 1L, Q6) and the codes for a negative / positive error. */
const Q6 = [
  0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
  1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN = [
  0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
  0,
];
const ILP = [
  0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33,
  32, 0,
];
const IHN = [0, 1, 0];
const IHP = [0, 3, 2];

/** Bounds `v` to [lo, hi]. Comparisons rather than Math.min/max: several times faster here under Jest's VM modules. */
function clamp(v: number, lo: number, hi: number): number {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return v;
}

/** Clamps to 16 bits, as the reference's `saturate`. */
const sat = (v: number): number => clamp(v, -32768, 32767);

/** One sub-band's ADPCM state: the adaptive predictor (two poles, six zeros) and the quantizer's scale. */
class Band {
  /** Predicted signal (s), its pole and zero parts. */
  s = 0;
  sp = 0;
  sz = 0;
  /** Quantizer scale factor, log (nb) and linear (det). */
  nb = 0;
  det: number;
  /** Reconstructed signal r[0..2], partial reconstruction p[0..2], difference d[0..6]. */
  readonly r = new Int32Array(3);
  readonly p = new Int32Array(3);
  readonly d = new Int32Array(7);
  /** Pole (a) and zero (b) coefficients, and their next values (ap, bp). */
  readonly a = new Int32Array(3);
  readonly ap = new Int32Array(3);
  readonly b = new Int32Array(7);
  readonly bp = new Int32Array(7);

  constructor(det: number) {
    this.det = det;
  }

  /** Log-scale adaptation (Blocks 3L/3H): `nb` leaks, steps by `w`, is bounded; `det` follows. */
  scale(w: number, nbMax: number, shift: number): void {
    const nb = clamp(((this.nb * 127) >> 7) + w, 0, nbMax);
    this.nb = nb;
    const e = shift - (nb >> 11);
    const v = ILB[(nb >> 6) & 31];
    this.det = (e < 0 ? v << -e : v >> e) << 2;
  }

  /** Block 4: reconstruction, predictor adaptation and the next prediction, from the quantized difference `d`. */
  update(d: number): void {
    const { r, p, a, ap, b, bp } = this;
    const dd = this.d;
    dd[0] = d;
    r[0] = sat(this.s + d);
    p[0] = sat(this.sz + d);
    // UPPOL2
    const sg0 = p[0] >> 15;
    const sg1 = p[1] >> 15;
    const sg2 = p[2] >> 15;
    const wd1 = sat(a[1] << 2);
    let wd2 = sg0 === sg1 ? -wd1 : wd1;
    if (wd2 > 32767) wd2 = 32767;
    let wd3 = (sg0 === sg2 ? 128 : -128) + (wd2 >> 7) + ((a[2] * 32512) >> 15);
    ap[2] = clamp(wd3, -12288, 12288);
    // UPPOL1
    ap[1] = sat((sg0 === sg1 ? 192 : -192) + ((a[1] * 32640) >> 15));
    wd3 = sat(15360 - ap[2]);
    if (ap[1] > wd3) ap[1] = wd3;
    else if (ap[1] < -wd3) ap[1] = -wd3;
    // UPZERO
    const step = d === 0 ? 0 : 128;
    const sgd = d >> 15;
    for (let i = 1; i < 7; i++) bp[i] = sat((dd[i] >> 15 === sgd ? step : -step) + ((b[i] * 32640) >> 15));
    // DELAYA
    for (let i = 6; i > 0; i--) {
      dd[i] = dd[i - 1];
      b[i] = bp[i];
    }
    for (let i = 2; i > 0; i--) {
      r[i] = r[i - 1];
      p[i] = p[i - 1];
      a[i] = ap[i];
    }
    // FILTEP, FILTEZ, PREDIC
    this.sp = sat(((a[1] * sat(r[1] + r[1])) >> 15) + ((a[2] * sat(r[2] + r[2])) >> 15));
    let sz = 0;
    for (let i = 6; i > 0; i--) sz += (b[i] * sat(dd[i] + dd[i])) >> 15;
    this.sz = sat(sz);
    this.s = sat(this.sp + this.sz);
  }
}

/** A G.722 stream's decoder: keeps the ADPCM and QMF state from one payload to the next. */
export class G722Decoder {
  readonly #low = new Band(32);
  readonly #high = new Band(8);
  /** QMF delay line. */
  readonly #x = new Int32Array(24);

  /** Decodes `payload` (one byte per two samples) into `out` from `outOffset`; returns the samples written. */
  decode(payload: Uint8Array, out: Int16Array, outOffset = 0): number {
    if (outOffset < 0 || outOffset + 2 * payload.length > out.length)
      throw new RangeError(`G.722 decode of ${payload.length} bytes at ${outOffset} overruns output of ${out.length}`);
    const low = this.#low;
    const high = this.#high;
    const x = this.#x;
    let o = outOffset;
    for (let j = 0; j < payload.length; j++) {
      const code = payload[j];
      // Low band: 6-bit code for the output, its 4 upper bits for the predictor.
      const il = code & 0x3f;
      const rlow = clamp(low.s + ((low.det * QM6[il]) >> 15), -16384, 16383);
      const ril = il >> 2;
      const dlow = (low.det * QM4[ril]) >> 15;
      low.scale(WL[RL42[ril]], 18432, 8);
      low.update(dlow);
      // High band: 2-bit code.
      const ih = code >> 6;
      const dhigh = (high.det * QM2[ih]) >> 15;
      const rhigh = clamp(dhigh + high.s, -16384, 16383);
      high.scale(WH[RH2[ih]], 22528, 10);
      high.update(dhigh);
      // Receive QMF: two output samples.
      x.copyWithin(0, 2);
      x[22] = rlow + rhigh;
      x[23] = rlow - rhigh;
      let xout1 = 0;
      let xout2 = 0;
      for (let i = 0; i < 12; i++) {
        xout2 += x[2 * i] * QMF[i];
        xout1 += x[2 * i + 1] * QMF[11 - i];
      }
      out[o++] = sat(xout1 >> 11);
      out[o++] = sat(xout2 >> 11);
    }
    return o - outOffset;
  }
}

/** A G.722 stream's encoder (test audio): 16 kHz samples in, one byte per pair out. */
export class G722Encoder {
  readonly #low = new Band(32);
  readonly #high = new Band(8);
  readonly #x = new Int32Array(24);

  /** Encodes `pcm` (an even number of samples) into a fresh payload. */
  encode(pcm: Int16Array): Buffer {
    if (pcm.length % 2 !== 0) throw new RangeError('G.722 encodes pairs of samples');
    const out = Buffer.allocUnsafe(pcm.length / 2);
    const low = this.#low;
    const high = this.#high;
    const x = this.#x;
    for (let j = 0, k = 0; j < pcm.length; j += 2, k++) {
      // Transmit QMF: the pair splits into a low and a high band sample.
      x.copyWithin(0, 2);
      x[22] = pcm[j];
      x[23] = pcm[j + 1];
      let sumOdd = 0;
      let sumEven = 0;
      for (let i = 0; i < 12; i++) {
        sumOdd += x[2 * i] * QMF[i];
        sumEven += x[2 * i + 1] * QMF[11 - i];
      }
      const xlow = (sumEven + sumOdd) >> 14;
      const xhigh = (sumEven - sumOdd) >> 14;
      // Low band: quantize the prediction error to 6 bits.
      const el = sat(xlow - low.s);
      const wl = el >= 0 ? el : -(el + 1);
      let i = 1;
      while (i < 30 && wl >= (Q6[i] * low.det) >> 12) i++;
      const il = el < 0 ? ILN[i] : ILP[i];
      const ril = il >> 2;
      const dlow = (low.det * QM4[ril]) >> 15;
      low.scale(WL[RL42[ril]], 18432, 8);
      low.update(dlow);
      // High band: 2 bits.
      const eh = sat(xhigh - high.s);
      const wh = eh >= 0 ? eh : -(eh + 1);
      const mih = wh >= (564 * high.det) >> 12 ? 2 : 1;
      const ih = eh < 0 ? IHN[mih] : IHP[mih];
      const dhigh = (high.det * QM2[ih]) >> 15;
      high.scale(WH[RH2[ih]], 22528, 10);
      high.update(dhigh);
      out[k] = (ih << 6) | il;
    }
    return out;
  }
}
