/** Codes the audio code throws with; `src/errors.ts` gives each its meaning on the wire. */
export type MediaErrorCode =
  /** Bytes that are not a recording this code can read (container, channels, sample format). */
  | 'ERR_BAD_RECORDING'
  /** A sample rate the codec or container cannot take. */
  | 'ERR_UNSUPPORTED_RATE'
  /** Two MP3 parts encoded in parallel found no seamless join: encode again in one part. */
  | 'ERR_MP3_JOIN'
  /** LAME wrote a frame other than the constant-size frame expected. */
  | 'ERR_MP3_FRAME'
  /** More audio queued for playout than the queue may hold. */
  | 'ERR_PLAYOUT_OVERFLOW';

/**
 * An error of the pure audio code, with a stable code to branch on (as `ws` and Node do).
 * `media/` is the ground floor: it imports nothing from `src/`, so it has its own class.
 */
export class MediaError extends Error {
  readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaError';
    this.code = code;
  }
}
