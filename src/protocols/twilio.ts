// Built from: Twilio Docs, "Media Streams - WebSocket Messages".
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
  legsOfTracks,
  malformed,
  mediaFormat,
  objectField,
  optionalString,
  stringField,
  type JsonObject,
} from './wire.js';

const ENCODINGS = { pcmu: 'audio/x-mulaw', pcma: 'audio/x-alaw', l16: 'audio/l16' };

function parseStart(message: JsonObject): StreamOpening {
  const start = objectField(message, 'start', 'start');
  const mediaFormatField = objectField(start, 'mediaFormat', 'start.mediaFormat');
  const sampleRate = mediaFormatField.sampleRate;
  if (typeof sampleRate !== 'number') throw malformed('start.mediaFormat.sampleRate');
  const wire = mediaFormat(
    stringField(mediaFormatField, 'encoding', 'start.mediaFormat.encoding'),
    sampleRate,
    ENCODINGS,
    'le',
  );

  // `<Connect><Stream>` (bidirectional) lists only `inbound`; `<Start><Stream track="both_tracks">` both.
  const legs = legsOfTracks(start.tracks, 'start.tracks');

  const params: Record<string, string> = {};
  flattenParams(start.customParameters, params);
  return {
    start: {
      providerCallId: optionalString(start, 'callSid', 'start.callSid'),
      streamId: stringField(start, 'streamSid', 'start.streamSid'),
      params,
      legs,
      // Only `<Connect><Stream>` (bidirectional) sends the inbound track alone; a fork of the
      // outbound or both tracks is `<Start><Stream>`, which plays nothing sent back.
      canSendAudio: !legs.includes('agent'),
    },
    wire,
  };
}

const dialect: TrackDialect = {
  provider: 'twilio',
  parseStart,
  // Every message to Twilio names its stream.
  address: (start) => ({ streamSid: start.streamId }),
  scrubStart: scrubStartParam('customParameters'),
  quietEvents: [],
  runtimeSampleBytes: streamSampleBytes,
  clock: 'timestamp',
  playback: TRACK_PLAYBACK,
};

/** Twilio Media Streams (`<Start><Stream>` fork or `<Connect><Stream>` bidirectional). */
export const twilio: AdapterFactory = (upgrade) => new TrackStreamAdapter(dialect, upgrade);

/**
 * SignalWire's cXML `<Stream>` (Compatibility API) speaks Twilio's Media Streams protocol message
 * for message; only the provider's name, in logs, metrics and the call's record, differs.
 */
export const signalwire: AdapterFactory = (upgrade) =>
  new TrackStreamAdapter({ ...dialect, provider: 'signalwire' }, upgrade);
