import { decodeRecording } from '../../media/decoders.js';
import { encodeRecording } from '../../media/encoders/index.js';
import type { RecordingFormat } from '../../media/types.js';

/** Where a transcode writes: containers patch their headers at the end, so every chunk has a position. */
export interface PositionedSink {
  write(data: Uint8Array, position: number): Promise<void>;
}

/**
 * Transcodes a recording streamed as `bytes` (stored as `from`) into `out` as format `to`,
 * decoding and encoding as it goes so memory stays bounded. Closing `bytes` after a failure
 * that happened before it was read to the end is the caller's job, as with `stream.pipeline`.
 * @throws CallrecError `ERR_BAD_RECORDING` (undecodable input), `ERR_UNSUPPORTED_RATE`.
 */
export async function transcode(
  from: RecordingFormat,
  bytes: AsyncIterable<Uint8Array>,
  to: RecordingFormat,
  out: PositionedSink,
): Promise<void> {
  const source = await decodeRecording(from, bytes);
  for await (const { position, data } of encodeRecording(to, source)) await out.write(data, position);
}
