// Built from: Vonage API Developer, "WebSockets in the Vonage Voice API" (and the NCCO reference, `connect` to a websocket).
import { CallrecError } from '../errors.js';
import type { MediaFormat } from '../../media/types.js';
import type { AdapterFactory, ProviderAdapter, ProviderEvent, RuntimeEvent, StreamStart, WireMessage } from './types.js';
import {
  beforeStart,
  checkMessageSize,
  eventName,
  malformed,
  mediaFormat,
  NOTHING,
  objectField,
  parseJsonObject,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** `audio/l16;rate=16000` → L16 little-endian at that rate. */
function parseContentType(contentType: string): MediaFormat {
  const [type, ...parameters] = contentType.toLowerCase().split(';').map((part) => part.trim());
  const rate = parameters.find((p) => p.startsWith('rate='))?.slice('rate='.length);
  return mediaFormat(type, rate === undefined ? NaN : Number(rate), { l16: 'audio/l16' }, 'le');
}

function parseConnected(message: JsonObject): StreamStart {
  const format = parseContentType(stringField(message, 'content-type', 'content-type'));
  // The NCCO endpoint's `headers` arrive flattened into this message, beside `event` and `content-type`.
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key !== 'event' && key !== 'content-type' && typeof value === 'string') params[key] = value;
  }
  return {
    providerCallId: params.uuid,
    params,
    format,
    // One mixed track: what the caller side sends.
    legs: ['caller'],
    // A Vonage websocket endpoint always plays the binary frames sent back on it.
    canSendAudio: true,
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

class VonageAdapter implements ProviderAdapter {
  readonly provider = 'vonage' as const;
  private format: MediaFormat | undefined;
  /** Samples received so far: Vonage frames carry no timestamp, so position is counted. */
  private samples = 0;

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) return this.parseFrame(data);
    const message = parseJsonObject(data);
    const event = eventName(message);
    switch (event) {
      case 'websocket:connected': {
        const start = parseConnected(message);
        this.format = start.format;
        return { type: 'start', start };
      }
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

  private parseFrame(data: Buffer): ProviderEvent {
    const format = this.format;
    if (format === undefined) throw beforeStart('audio');
    if (data.length % 2 !== 0) throw new CallrecError('ERR_BAD_PAYLOAD', 'frame: not a whole number of samples');
    const timestampMs = (this.samples * 1000) / format.sampleRate;
    this.samples += data.length / 2;
    return { type: 'media', leg: 'caller', timestampMs, payload: data };
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    if (isBinary) {
      if (data.length % 2 !== 0) throw new CallrecError('ERR_BAD_PAYLOAD', 'frame: not a whole number of samples');
      return { type: 'media', payload: data };
    }
    const message = parseJsonObject(data);
    const action = eventName(message, 'action');
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

  /** `payload` must be whole 20 ms frames of L16 LE at the stream's rate (Vonage plays nothing else). */
  mediaMessage(payload: Buffer): WireMessage {
    return { data: payload, binary: true };
  }

  markMessage(name: string): WireMessage {
    return textMessage({ action: 'notify', payload: { name } });
  }

  clearMessage(): WireMessage {
    return textMessage({ action: 'clear' });
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    delete message.token;
    return textMessage(message);
  }
}

/** Vonage Voice API `connect` to a websocket endpoint. */
export const vonage: AdapterFactory = () => new VonageAdapter();
