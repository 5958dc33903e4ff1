// Built from: jambonz docs, "listen" verb (the WebSocket it opens: subprotocol `audio.jambonz.org`,
// one JSON metadata text frame, then binary L16; bidirectional audio, marks, killAudio).
import {
  BinaryStreamAdapter,
  dropCredentials,
  l16Opening,
  mixChannels,
  rateField,
  type BinaryDialect,
  type BinaryOpening,
  type RuntimeText,
} from './binary-stream.js';
import type { AdapterFactory, ProviderEvent } from './types.js';
import {
  flattenParams,
  NOTHING,
  objectField,
  optionalString,
  parseJsonObject,
  stringField,
  textMessage,
  unknownEvent,
} from './wire.js';

function parseStart(data: Buffer): BinaryOpening {
  const message = parseJsonObject(data);
  const rate = rateField(message, 'sampleRate', 'sampleRate');
  const channels = mixChannels(optionalString(message, 'mixType', 'mixType') ?? 'mono', 'mixType');
  // The call's attributes (callSid, from, to, …) and, over them, the verb's own `metadata`.
  const params: Record<string, string> = {};
  flattenParams(message, params);
  flattenParams(message.metadata, params);
  // `bidirectionalAudio` is not in the metadata: the session's rule decides the mode (SPEC §4).
  return l16Opening(optionalString(message, 'callSid', 'callSid'), params, rate, channels);
}

function parseControl(data: Buffer): ProviderEvent {
  const message = parseJsonObject(data);
  if (message.event === 'dtmf') return { type: 'dtmf', digit: stringField(message, 'dtmf', 'dtmf') };
  if (message.type === 'mark') {
    const mark = objectField(message, 'data', 'data');
    // A mark cleared by `killAudio` was never played: nothing for the recording.
    return mark.event === 'cleared' ? NOTHING : { type: 'mark', name: stringField(mark, 'name', 'data.name') };
  }
  throw unknownEvent(String(message.event ?? message.type ?? ''));
}

/** Runtime messages jambonz accepts that carry nothing for the recording. */
const QUIET_COMMANDS = new Set(['clearMarks', 'disconnect', 'transcription']);

function parseRuntimeText(data: Buffer): RuntimeText {
  const message = parseJsonObject(data);
  const type = stringField(message, 'type', 'type');
  switch (type) {
    case 'playAudio': {
      const audio = objectField(message, 'data', 'data');
      // Only raw L16 is audio callrec can record; a WAV clip still plays, unrecorded.
      if (audio.audioContentType !== 'raw') return { type: 'other' };
      const payload = Buffer.from(stringField(audio, 'audioContent', 'data.audioContent'), 'base64');
      return { type: 'audio', payload, rate: rateField(audio, 'sampleRate', 'data.sampleRate') };
    }
    case 'killAudio':
      return { type: 'clear' };
    case 'mark':
      return { type: 'mark', name: stringField(objectField(message, 'data', 'data'), 'name', 'data.name') };
    default:
      if (QUIET_COMMANDS.has(type)) return { type: 'other' };
      throw unknownEvent(type);
  }
}

const dialect: BinaryDialect = {
  provider: 'jambonz',
  parseStart,
  parseControl,
  parseRuntimeText,
  // Streamed binary audio: the verb's `bidirectionalAudio.sampleRate` must be its `sampleRate`.
  mediaMessage: (audio) => ({ data: audio, binary: true }),
  markMessage: (name) => textMessage({ type: 'mark', data: { name } }),
  clearMessage: () => textMessage({ type: 'killAudio' }),
  runtimeStartMessage(raw, upgrade) {
    const message = parseJsonObject(raw);
    dropCredentials(upgrade, message, message.metadata);
    return textMessage(message);
  },
};

/** jambonz `listen` (fork, or bidirectional audio for a bridge). */
export const jambonz: AdapterFactory = (upgrade) => new BinaryStreamAdapter(dialect, upgrade);
