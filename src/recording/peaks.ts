import { text } from 'node:stream/consumers';
import type { Waveform } from '../../media/peaks.js';
import { encryptStream, openEncrypted } from '../crypto/chunked.js';
import type { ObjectStore } from '../storage/types.js';

/** A recording's waveform as stored and served: the channels named as the audio lays them out. */
export interface PeaksDocument extends Waveform {
  channels: ['caller', 'agent'] | ['mix'];
}

/** Dual-channel recordings are left = caller, right = agent (SPEC §6); mono ones are the mix. */
export function peaksDocument(channels: number, waveform: Waveform): PeaksDocument {
  return {
    duration: waveform.duration,
    channels: channels === 2 ? ['caller', 'agent'] : ['mix'],
    peaks: waveform.peaks,
  };
}

/**
 * Where a recording's peaks live: beside its audio object, `{recording_id}.peaks.json.enc`
 * for `{recording_id}.{format}.enc`, so whatever finds or deletes the one finds the other.
 */
export function peaksKeyFor(audioKey: string): string {
  return `${audioKey.replace(/(\.[^./]+)?\.enc$/, '')}.peaks.json.enc`;
}

/** Stores the peaks encrypted under the recording's own data key, so they share its key handling (wrap, rotation, deletion). */
export async function putPeaks(
  objects: ObjectStore,
  audioKey: string,
  dataKey: Buffer,
  keyId: string,
  peaks: PeaksDocument,
): Promise<void> {
  const body = encryptStream(dataKey, { keyId });
  body.end(JSON.stringify(peaks));
  await objects.put(peaksKeyFor(audioKey), body);
}

/** The stored peaks, or null when the recording has none (recorded before peaks existed). */
export async function readPeaks(
  objects: ObjectStore,
  audioKey: string,
  dataKey: Buffer,
): Promise<PeaksDocument | null> {
  const key = peaksKeyFor(audioKey);
  const size = await objects.size(key);
  if (size === null) return null;
  const object = await openEncrypted(dataKey, size, (range) => objects.get(key, range));
  return JSON.parse(await text(await object.read(0, object.plainLength - 1))) as PeaksDocument;
}
