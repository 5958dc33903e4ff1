import { CallrecError } from '../../errors.js';
import { FileTtsEngine } from './file.js';
import { FliteEngine } from './flite.js';
import type { FlitePoolLimits } from './flite-pool.js';
import { GoogleTtsEngine } from './google.js';
import type { TtsEngine } from './types.js';

export type { TtsEngine } from './types.js';
export { FileTtsEngine } from './file.js';
export { FliteEngine, fliteSpeak, FLITE_VOICES, type FliteVoice } from './flite.js';
export { FlitePool, FLITE_POOL_DEFAULTS, type FlitePoolLimits } from './flite-pool.js';
export { GoogleTtsEngine, type GoogleTtsOptions } from './google.js';

/**
 * The engine a `TTS_ENGINE` value names. Each engine reads its own optional settings from `env`:
 * - `flite`: `FLITE_VOICE` (`slt` default; `kal`, `kal16`, `awb`, `rms`); its pool of workers
 *   and queue are `flite` (FLITE_WORKERS, FLITE_QUEUE_*, validated with the configuration).
 * - `google`: `GOOGLE_TTS_VOICE` (default `en-US-Standard-C`); `GOOGLE_TTS_API_KEY`, else
 *   Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, metadata server, …).
 * - `file:<dir>`: none.
 */
export function createTtsEngine(
  spec: string,
  env: Record<string, string | undefined> = process.env,
  flite?: FlitePoolLimits,
): TtsEngine {
  if (spec === 'flite') return new FliteEngine(env.FLITE_VOICE || undefined, flite);
  if (spec === 'google') {
    const apiKey = env.GOOGLE_TTS_API_KEY || undefined;
    return new GoogleTtsEngine({ voice: env.GOOGLE_TTS_VOICE || undefined, client: apiKey ? { apiKey } : {} });
  }
  if (spec.startsWith('file:') && spec.length > 'file:'.length) return new FileTtsEngine(spec.slice('file:'.length));
  throw new CallrecError('ERR_CONFIG', `TTS_ENGINE: must be flite, google or file:<dir>, got "${spec}"`);
}
