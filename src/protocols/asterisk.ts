// Built from: Asterisk docs, "WebSocket" channel driver (chan_websocket, ARI external media over
// WebSocket): binary media frames in the channel's format, text control events (`MEDIA_START`,
// `MEDIA_XOFF`/`MEDIA_XON`, `MEDIA_MARK_PROCESSED`, …) and commands, in plain text or JSON.
import { BinaryStreamAdapter, type BinaryDialect, type BinaryOpening, type RuntimeText } from './binary-stream.js';
import { wireFormat } from './pcm.js';
import type { AdapterFactory, ProviderEvent } from './types.js';
import {
  beforeStart,
  flattenParams,
  malformed,
  NOTHING,
  parseJsonObject,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** Asterisk's format names → codec and rate. Signed linear is the host's order: little-endian on x86 and ARM. */
const FORMATS: Record<string, { codec: 'pcmu' | 'pcma' | 'l16'; rate: number }> = {
  ulaw: { codec: 'pcmu', rate: 8000 },
  alaw: { codec: 'pcma', rate: 8000 },
  slin: { codec: 'l16', rate: 8000 },
  slin16: { codec: 'l16', rate: 16000 },
  slin24: { codec: 'l16', rate: 24000 },
  slin48: { codec: 'l16', rate: 48000 },
};

/**
 * A control message as `{ event, ...fields }`, from either format: JSON (`control_message_format
 * = json`) or the plain-text line `NAME key:value key:value`.
 */
function parseControlMessage(
  data: Buffer,
  nameField: 'event' | 'command',
): { name: string; fields: JsonObject; json: boolean } {
  if (data[0] === 0x7b /* { */) {
    const fields = parseJsonObject(data);
    const name = fields[nameField];
    if (typeof name !== 'string') throw malformed(nameField);
    return { name, fields, json: true };
  }
  const [name, ...pairs] = data.toString('utf8').trim().split(/\s+/);
  if (!/^[A-Z_]+$/.test(name)) throw malformed('message', 'not an Asterisk control message');
  const fields: JsonObject = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon > 0) fields[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return { name, fields, json: false };
}

/** Events Asterisk sends that carry nothing for the recording (buffering, status). */
const QUIET_EVENTS = new Set(['MEDIA_BUFFERING_COMPLETED', 'QUEUE_DRAINED', 'STATUS']);
/** Commands a runtime may send that carry nothing for the recording. */
const QUIET_COMMANDS = new Set([
  'ANSWER',
  'HANGUP',
  'START_MEDIA_BUFFERING',
  'STOP_MEDIA_BUFFERING',
  'GET_STATUS',
  'REPORT_QUEUE_DRAINED',
  'PAUSE_MEDIA',
  'CONTINUE_MEDIA',
  'SET_MEDIA_DIRECTION',
]);

class AsteriskDialect implements BinaryDialect {
  readonly provider = 'asterisk' as const;
  /** Commands go back in the format the events came in. */
  #json = false;

  parseStart(data: Buffer): BinaryOpening {
    const { name, fields, json } = parseControlMessage(data, 'event');
    if (name !== 'MEDIA_START') throw beforeStart(name.slice(0, 40));
    this.#json = json;
    const formatName = typeof fields.format === 'string' ? fields.format : '';
    const format = FORMATS[formatName];
    const params: Record<string, string> = {};
    flattenParams(fields, params);
    flattenParams(fields.channel_variables, params);
    return {
      start: {
        // Not the connection id: an outgoing connection's is the websocket_client.conf entry, the same for every call.
        providerCallId: params.channel_id,
        params,
        // What the WebSocket channel hears: the caller it is bridged to.
        legs: ['caller'],
        // chan_websocket always plays the media sent back on it.
        canSendAudio: true,
      },
      wire: wireFormat(format?.codec ?? null, format?.rate ?? 0, 'le', formatName || 'none'),
      channels: 1,
    };
  }

  parseControl(data: Buffer): ProviderEvent {
    const { name, fields } = parseControlMessage(data, 'event');
    if (name === 'MEDIA_MARK_PROCESSED') return { type: 'mark', name: String(fields.correlation_id ?? '') };
    if (name === 'DTMF_END' && typeof fields.digit === 'string') return { type: 'dtmf', digit: fields.digit };
    // Its frame queue (about 1,000 frames) reached the XOFF level (about 900): what is sent
    // after this "will probably be dropped" until XON (below about 800).
    // https://docs.asterisk.org/Configuration/Channel-Drivers/WebSocket/ ("Max Message Size and Flow Control")
    if (name === 'MEDIA_XOFF') return { type: 'flow', paused: true };
    if (name === 'MEDIA_XON') return { type: 'flow', paused: false };
    if (QUIET_EVENTS.has(name)) return NOTHING;
    throw unknownEvent(name);
  }

  parseRuntimeText(data: Buffer): RuntimeText {
    const { name, fields } = parseControlMessage(data, 'command');
    if (name === 'FLUSH_MEDIA') return { type: 'clear' };
    if (name === 'MARK_MEDIA') return { type: 'mark', name: String(fields.correlation_id ?? '') };
    if (QUIET_COMMANDS.has(name)) return { type: 'other' };
    throw unknownEvent(name);
  }

  mediaMessage(audio: Buffer) {
    return { data: audio, binary: true };
  }

  #command(command: string, fields: Record<string, string> = {}) {
    if (this.#json) return textMessage({ command, ...fields });
    return { data: [command, ...Object.entries(fields).map(([k, v]) => `${k}:${v}`)].join(' '), binary: false };
  }

  markMessage(name: string) {
    return this.#command('MARK_MEDIA', { correlation_id: name });
  }

  clearMessage() {
    return this.#command('FLUSH_MEDIA');
  }

  /** `MEDIA_START` carries no credential of callrec's (the token is in the URL): as it came. */
  runtimeStartMessage(raw: Buffer) {
    return { data: raw.toString('utf8'), binary: false };
  }
}

/** Asterisk `chan_websocket` (Dial(WebSocket/…) or ARI external media with transport websocket). */
export const asterisk: AdapterFactory = (upgrade) => new BinaryStreamAdapter(new AsteriskDialect(), upgrade);
