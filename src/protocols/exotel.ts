// Built from: Exotel Developer Docs, "Working with the Stream and Voicebot Applet" (AgentStream):
// connected, start, media, dtmf, mark, stop from Exotel; media, mark, clear back to it.
import {
  scrubStartParam,
  streamSampleBytes,
  TRACK_PLAYBACK,
  TrackStreamAdapter,
  type TrackDialect,
} from './track-stream.js';
import type { StreamOpening } from './pcm.js';
import type { AdapterFactory } from './types.js';
import {
  flattenParams,
  malformed,
  mediaFormat,
  objectField,
  optionalString,
  stringField,
  type JsonObject,
} from './wire.js';

/**
 * Exotel's `media_format.encoding` says how the audio is carried (`base64`, or `audio/x-raw` as
 * the newer docs show it), not its codec: the audio is raw/slin, 16-bit little-endian PCM, at
 * `sample_rate`: 8000, 16000 or 24000 as the applet's URL asks (`?sample-rate=`;
 * https://developer.exotel.com/docs/agentstream/stream-voicebot-applet), 24 kHz recorded at 16.
 * The μ-law option (`contentType="audio/x-mulaw;rate=8000"` on ExoML `<StartStream>`) names
 * itself `audio/x-mulaw`.
 */
const ENCODINGS = { pcmu: 'audio/x-mulaw', l16: ['base64', 'audio/x-raw'], l16Rates: [8000, 16000, 24000] };

function parseStart(message: JsonObject): StreamOpening {
  const start = objectField(message, 'start', 'start');
  const mf = objectField(start, 'media_format', 'start.media_format');
  // Sent as a decimal string ("8000"), as a number by some accounts.
  const sampleRate = Number(mf.sample_rate);
  if (typeof mf.sample_rate !== 'string' && typeof mf.sample_rate !== 'number')
    throw malformed('start.media_format.sample_rate');
  const wire = mediaFormat(stringField(mf, 'encoding', 'start.media_format.encoding'), sampleRate, ENCODINGS, 'le');
  const params: Record<string, string> = {};
  flattenParams(start.custom_parameters, params);
  return {
    start: {
      providerCallId: optionalString(start, 'call_sid', 'start.call_sid'),
      streamId:
        optionalString(message, 'stream_sid', 'stream_sid') ?? optionalString(start, 'stream_sid', 'start.stream_sid'),
      params,
      // The default stream is the caller's alone, its frames naming no track; with `both` tracks
      // chosen each frame names its own, and the start says nothing of it. Both legs are declared
      // and a caller-only stream never fills the agent leg (as Telnyx).
      legs: ['caller', 'agent'],
      // The Stream applet (one-way) and the Voicebot applet (two-way) send the same start; a
      // `bidirectional` URL parameter or the session's rule decides (SPEC §4).
    },
    wire,
  };
}

const dialect: TrackDialect = {
  provider: 'exotel',
  parseStart,
  // Every message to Exotel names its stream.
  address: (start) => ({ stream_sid: start.streamId }),
  scrubStart: scrubStartParam('custom_parameters'),
  quietEvents: [],
  runtimeSampleBytes: streamSampleBytes,
  // `media.timestamp` is ms since the stream began; chunks are of any length (about 100 ms).
  clock: 'timestamp',
  untrackedLeg: 'caller',
  playback: TRACK_PLAYBACK,
  // Exotel plays chunks of 3.2 KB or more, in multiples of 320 bytes, without distortion: 200 ms
  // is both at 8 kHz (3,200 bytes), 16 kHz (6,400) and 24 kHz (9,600).
  playbackFrameMs: 200,
};

/** Exotel AgentStream: the Stream applet (fork) and the Voicebot applet (bidirectional). */
export const exotel: AdapterFactory = (upgrade) => new TrackStreamAdapter(dialect, upgrade);
