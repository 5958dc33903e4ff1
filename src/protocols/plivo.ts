// Built from: Plivo Docs, "Audio Streaming" (the `<Stream>` XML element and its Stream Event
// Protocol: start, media, dtmf, playedStream, clearedAudio; playAudio, checkpoint, clearAudio, sendDTMF).
import { CallrecError } from '../errors.js';
import type { MediaFormat } from '../../media/types.js';
import { streamSampleBytes, TrackStreamAdapter, type TrackDialect } from './track-stream.js';
import type { StreamOpening } from './pcm.js';
import type { AdapterFactory } from './types.js';
import {
  legsOfTracks,
  malformed,
  mediaFormat,
  objectField,
  optionalString,
  stringField,
  type JsonObject,
} from './wire.js';

const ENCODINGS = { pcmu: 'audio/x-mulaw', l16: 'audio/x-l16' };
const CONTENT_TYPES: Partial<Record<MediaFormat['codec'], string>> = { pcmu: ENCODINGS.pcmu, l16: ENCODINGS.l16 };

/**
 * `extra_headers` (the `extraHeaders` attribute) as parameters: `k=v` pairs, separated by `,` as
 * the attribute is written or `;` as the start message shows them.
 */
function extraHeaders(value: string | undefined, into: Record<string, string>): void {
  if (value === undefined) return;
  for (const pair of value.split(/[;,]/)) {
    const at = pair.indexOf('=');
    if (at > 0) into[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
}

function parseStart(message: JsonObject): StreamOpening {
  const start = objectField(message, 'start', 'start');
  const mf = objectField(start, 'mediaFormat', 'start.mediaFormat');
  const sampleRate = mf.sampleRate;
  if (typeof sampleRate !== 'number') throw malformed('start.mediaFormat.sampleRate');
  // L16 is sent little-endian, as Plivo's own examples decode it.
  const wire = mediaFormat(stringField(mf, 'encoding', 'start.mediaFormat.encoding'), sampleRate, ENCODINGS, 'le');

  const legs = legsOfTracks(start.tracks, 'start.tracks');

  const params: Record<string, string> = {};
  extraHeaders(optionalString(message, 'extra_headers', 'extra_headers'), params);
  return {
    start: {
      providerCallId: optionalString(start, 'callId', 'start.callId'),
      streamId: stringField(start, 'streamId', 'start.streamId'),
      params,
      legs,
      // A bidirectional stream may carry the inbound track only; whether one that does is
      // bidirectional is not in the start, so the session's rule decides (SPEC §4).
      canSendAudio: legs.includes('agent') ? false : undefined,
    },
    wire,
  };
}

/** `extra_headers` without callrec's `token` pair; the rest kept as Plivo wrote it. */
function scrubStart(message: JsonObject): void {
  const headers = optionalString(message, 'extra_headers', 'extra_headers');
  if (headers === undefined) return;
  const separator = headers.includes(';') ? ';' : ',';
  message.extra_headers = headers
    .split(/[;,]/)
    .filter((pair) => !pair.trim().startsWith('token='))
    .join(separator);
}

const dialect: TrackDialect = {
  provider: 'plivo',
  parseStart,
  // Every message to Plivo names its stream.
  address: (start) => ({ streamId: start.streamId }),
  scrubStart,
  quietEvents: ['clearedAudio'],
  runtimeSampleBytes: streamSampleBytes,
  // `media.timestamp` is wall-clock (Unix ms); `media.chunk` counts each track's frames from 1.
  clock: 'chunk',
  playback: {
    media: 'playAudio',
    mark: 'checkpoint',
    clear: 'clearAudio',
    markEcho: 'playedStream',
    runtimeQuiet: ['sendDTMF'],
    mediaBody: (payload, wire) => ({
      media: { contentType: CONTENT_TYPES[wire.codec], sampleRate: wire.rate, payload },
    }),
    markBody: (name) => ({ name }),
    markName: (message) => stringField(message, 'name', 'name'),
    // Plivo plays any of its formats into any stream; the recording holds the stream's only.
    checkMedia(message, wire) {
      const media = objectField(message, 'media', 'media');
      const contentType = stringField(media, 'contentType', 'media.contentType');
      if (wire !== undefined && (contentType !== CONTENT_TYPES[wire.codec] || media.sampleRate !== wire.rate)) {
        throw new CallrecError(
          'ERR_UNSUPPORTED_CODEC',
          `playAudio in ${contentType.slice(0, 40)} at ${String(media.sampleRate).slice(0, 10)} Hz; the stream is ${CONTENT_TYPES[wire.codec]} at ${wire.rate} Hz`,
        );
      }
    },
  },
};

/** Plivo Audio Streams (`<Stream>` one-way, or `bidirectional="true"`); `extraHeaders` become params. */
export const plivo: AdapterFactory = (upgrade) => new TrackStreamAdapter(dialect, upgrade);
