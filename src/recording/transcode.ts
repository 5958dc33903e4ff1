import fs from 'node:fs/promises';
import { decodeRecording } from '../../media/decoders.js';
import { encodeRecording } from '../../media/encoders/index.js';
import type { RecordingFormat } from '../../media/types.js';

/**
 * Transcodes a recording streamed as `bytes` (stored as `from`) into a new file of format `to`,
 * decoding and encoding as it goes so memory stays bounded. The file is created with mode 0600
 * and must not exist yet (no clobbering, no following a planted symlink); on failure it is
 * removed, so a half-written file is never served. Closing `bytes` after a failure that
 * happened before it was read to the end is the caller's job, as with `stream.pipeline`.
 * @throws CallrecError `ERR_BAD_RECORDING` (undecodable input), `ERR_UNSUPPORTED_RATE`.
 */
export async function transcodeToFile(from: RecordingFormat, bytes: AsyncIterable<Uint8Array>, to: RecordingFormat, file: string): Promise<{ size: number }> {
  const source = await decodeRecording(from, bytes);
  const out = await fs.open(file, 'wx', 0o600);
  let size = 0;
  try {
    try {
      // Containers patch their headers at the end, so every chunk goes to its own position.
      for await (const { position, data } of encodeRecording(to, source)) {
        await out.write(data, 0, data.length, position);
        size = Math.max(size, position + data.length);
      }
    } finally {
      await out.close();
    }
  } catch (err) {
    await fs.rm(file, { force: true });
    throw err;
  }
  return { size };
}
