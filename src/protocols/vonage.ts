// Built from: Vonage API Developer, "WebSockets in the Vonage Voice API" (and the NCCO reference, `connect` to a websocket).
import {
  BinaryStreamAdapter,
  dropCredentials,
  type BinaryDialect,
  type BinaryOpening,
  type RuntimeText,
} from './binary-stream.js';
import { wireFormat } from './pcm.js';
import type { AdapterFactory, ProviderEvent } from './types.js';
import {
  beforeStart,
  eventName,
  malformed,
  NOTHING,
  objectField,
  parseJsonObject,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** `audio/l16;rate=16000` → L16 little-endian at that rate (8, 16 or 24 kHz as Vonage sends it). */
function parseContentType(contentType: string): { rate: number; ok: boolean } {
  const [type, ...parameters] = contentType
    .toLowerCase()
    .split(';')
    .map((part) => part.trim());
  const rate = parameters.find((p) => p.startsWith('rate='))?.slice('rate='.length);
  return { rate: rate === undefined ? NaN : Number(rate), ok: type === 'audio/l16' };
}

function parseStart(data: Buffer): BinaryOpening {
  const message = parseJsonObject(data);
  const event = eventName(message);
  if (event !== 'websocket:connected') {
    parseControl(data); // an unknown event is refused as such
    throw beforeStart(event);
  }
  const contentType = stringField(message, 'content-type', 'content-type');
  const { rate, ok } = parseContentType(contentType);
  // The NCCO endpoint's `headers` arrive flattened into this message, beside `event` and `content-type`.
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key !== 'event' && key !== 'content-type' && typeof value === 'string') params[key] = value;
  }
  return {
    start: {
      providerCallId: params.uuid,
      params,
      // One mixed track: what the caller side sends.
      legs: ['caller'],
      // A Vonage websocket endpoint always plays the binary frames sent back on it.
      canSendAudio: true,
    },
    wire: wireFormat(ok ? 'l16' : null, rate, 'le', contentType.split(';')[0]),
    channels: 1,
  };
}

/** Vonage's notify payload is free-form; callrec's own marks put their name in `payload.name`. */
function notifyName(message: JsonObject): string {
  const payload = message.payload;
  if (typeof payload === 'object' && payload !== null && typeof (payload as JsonObject).name === 'string') {
    return (payload as JsonObject).name as string;
  }
  return JSON.stringify(payload ?? null);
}

/** Vonage documents the digit at the top level; older events nest it as `dtmf.digits`. */
function dtmfDigit(message: JsonObject): string {
  if (typeof message.digit === 'string') return message.digit;
  if (typeof message.dtmf === 'object' && message.dtmf !== null) {
    return stringField(objectField(message, 'dtmf', 'dtmf'), 'digits', 'digit');
  }
  throw malformed('digit');
}

function parseControl(data: Buffer): ProviderEvent {
  const message = parseJsonObject(data);
  const event = eventName(message);
  switch (event) {
    case 'websocket:dtmf':
      return { type: 'dtmf', digit: dtmfDigit(message) };
    case 'websocket:notify':
      return { type: 'mark', name: notifyName(message) };
    case 'websocket:cleared':
      return NOTHING;
    default:
      throw unknownEvent(event);
  }
}

function parseRuntimeText(data: Buffer): RuntimeText {
  const action = eventName(parseJsonObject(data), 'action');
  switch (action) {
    case 'clear':
      return { type: 'clear' };
    case 'notify':
      // The runtime's own notify: Vonage echoes it to the runtime, nothing for the recording.
      return { type: 'other' };
    default:
      throw unknownEvent(action);
  }
}

const dialect: BinaryDialect = {
  provider: 'vonage',
  parseStart,
  parseControl,
  parseRuntimeText,
  // Whole 20 ms frames of L16 LE at the stream's rate: Vonage plays nothing else.
  mediaMessage: (audio) => ({ data: audio, binary: true }),
  markMessage: (name) => textMessage({ action: 'notify', payload: { name } }),
  clearMessage: () => textMessage({ action: 'clear' }),
  runtimeStartMessage(raw, upgrade) {
    const message = parseJsonObject(raw);
    dropCredentials(upgrade, message);
    return textMessage(message);
  },
};

/** Vonage Voice API `connect` to a websocket endpoint. */
export const vonage: AdapterFactory = (upgrade) => new BinaryStreamAdapter(dialect, upgrade);
