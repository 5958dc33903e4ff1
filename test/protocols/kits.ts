/**
 * Each provider's messages in its own documented shape, for the adapter contract suite: what
 * the provider sends, what a runtime speaking its protocol sends, and how the provider echoes
 * a mark. Field values follow the providers' documentation examples.
 */
import { TELNYX_AUTH_HEADER } from '../../src/protocols/index.js';
import type { Provider, UpgradeInfo, WireMessage } from '../../src/protocols/types.js';
import type { MediaFormat } from '../../media/types.js';

export interface Frame {
  data: Buffer;
  binary: boolean;
}

const text = (message: unknown): Frame => ({ data: Buffer.from(JSON.stringify(message)), binary: false });
const binary = (data: Buffer): Frame => ({ data, binary: true });

/** The code of the error `fn` throws; undefined when it throws none. */
export function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

/** A `media` message of the Twilio/Telnyx family, the `n`th 20 ms frame of one leg. */
function trackMedia(leg: 'caller' | 'agent', n: number, payload: string, ids: Record<string, string>): Frame {
  const media = { track: leg === 'caller' ? 'inbound' : 'outbound', chunk: String(n + 1), timestamp: String(n * 20), payload };
  return text({ event: 'media', ...ids, media });
}

/** callrec's API key as a provider hands it over; it must never reach a runtime. */
export const SECRET = 'cr_live_0123456789abcdef';

export interface ProviderKit {
  upgrade: UpgradeInfo;
  /** The stream's format in `start()`, and the bytes of 20 ms of it. */
  format: MediaFormat;
  frameBytes: number;
  /** Whether media frames carry the agent leg too (a forked `both_tracks` stream). */
  carriesAgent: boolean;
  /** Sent before the start, where the provider sends one. */
  connected: Frame | null;
  /** The start, with `agent_id: 'agent-1'`, `call_id: 'call-1'` and the token in every place the provider allows. */
  start: Frame;
  unsupportedCodecStart: Frame;
  /** The `n`th 20 ms frame of one leg (n from 0), placed at n × 20 ms. */
  media(leg: 'caller' | 'agent', n: number, payload: Buffer): Frame;
  /** The same frame with a payload that is not audio of the stream's format. */
  badPayload(n: number): Frame;
  /** Null where the provider sends no keys (AudioHook Monitor). */
  dtmf: ((digit: string) => Frame) | null;
  /** The provider only listens (AudioHook Monitor): no marks, no audio back, no runtime; the runtime fields go unused. */
  oneWay?: boolean;
  /** What the provider sends back once playback reaches a mark callrec sent. */
  echoMark(sent: WireMessage): Frame;
  stop: Frame | null;
  unknownEvent: Frame;
  /** What a runtime speaking the provider's protocol sends. */
  runtimeMedia(payload: Buffer): Frame;
  runtimeMark(name: string): Frame;
  runtimeClear: Frame;
  /** What `parseRuntimeMessage` makes of `runtimeMark` (Vonage: its notify is nothing to callrec). */
  runtimeMarkEvent(name: string): { type: 'mark'; name: string } | { type: 'other' };
  /** The text of a start message, with every encoded part decoded, to search for secrets. */
  reveal(start: string): string;
}

const TWILIO_SID = 'MZ18ad3ab5a668481ce02b83e7395059f0';
const twilio: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'pcmu', sampleRate: 8000 },
  frameBytes: 160,
  carriesAgent: true,
  connected: text({ event: 'connected', protocol: 'Call', version: '1.0.0' }),
  start: text({
    event: 'start',
    sequenceNumber: '1',
    start: {
      accountSid: 'AC2ab2f3c6f42b5a6f2b2c4e8d2a7f2d11',
      streamSid: TWILIO_SID,
      callSid: 'CA5ea0b9ee9e2eaf1f4fa7e1d9e5c2a8b6',
      tracks: ['inbound', 'outbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      customParameters: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
    },
    streamSid: TWILIO_SID,
  }),
  unsupportedCodecStart: text({
    event: 'start',
    sequenceNumber: '1',
    start: { streamSid: TWILIO_SID, tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 16000, channels: 1 } },
    streamSid: TWILIO_SID,
  }),
  media: (leg, n, payload) => trackMedia(leg, n, payload.toString('base64'), { sequenceNumber: String(n + 3), streamSid: TWILIO_SID }),
  badPayload: (n) => trackMedia('caller', n, 'not base64!', { sequenceNumber: String(n + 3), streamSid: TWILIO_SID }),
  dtmf: (digit) => text({ event: 'dtmf', streamSid: TWILIO_SID, sequenceNumber: '5', dtmf: { track: 'inbound_track', digit } }),
  echoMark: (sent) => text({ ...JSON.parse(sent.data as string), sequenceNumber: '9' }),
  stop: text({ event: 'stop', sequenceNumber: '10', streamSid: TWILIO_SID, stop: { accountSid: 'AC1', callSid: 'CA1' } }),
  unknownEvent: text({ event: 'hello', streamSid: TWILIO_SID }),
  runtimeMedia: (payload) => text({ event: 'media', streamSid: TWILIO_SID, media: { payload: payload.toString('base64') } }),
  runtimeMark: (name) => text({ event: 'mark', streamSid: TWILIO_SID, mark: { name } }),
  runtimeClear: text({ event: 'clear', streamSid: TWILIO_SID }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const TELNYX_STREAM = '32DE0DEA-53CB-4B21-89A4-9E1819C043BC';
const clientState = (state: object) => Buffer.from(JSON.stringify(state)).toString('base64');
const telnyx: ProviderKit = {
  upgrade: { headers: { [TELNYX_AUTH_HEADER]: SECRET }, query: {} },
  format: { codec: 'l16', sampleRate: 16000, byteOrder: 'be' },
  frameBytes: 640,
  carriesAgent: true,
  connected: text({ event: 'connected', version: '1.0.0' }),
  start: text({
    event: 'start',
    sequence_number: '1',
    start: {
      user_id: '3e6f995f-85f7-4705-9741-53b116d28237',
      call_control_id: 'v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg',
      client_state: clientState({ call_id: 'call-1', token: SECRET }),
      from: '+13122010094',
      to: '+13122123456',
      media_format: { encoding: 'L16', sample_rate: 16000, channels: 1 },
      custom_parameters: { agent_id: 'agent-1', token: SECRET, stream_auth: SECRET },
    },
    stream_id: TELNYX_STREAM,
  }),
  unsupportedCodecStart: text({
    event: 'start',
    sequence_number: '1',
    start: { call_control_id: 'v3:x', media_format: { encoding: 'OPUS', sample_rate: 16000, channels: 1 } },
    stream_id: TELNYX_STREAM,
  }),
  media: (leg, n, payload) => trackMedia(leg, n, payload.toString('base64'), { sequence_number: String(n + 3), stream_id: TELNYX_STREAM }),
  // Three bytes: not a whole number of 16-bit samples.
  badPayload: (n) => trackMedia('caller', n, 'AAEC', { sequence_number: String(n + 3), stream_id: TELNYX_STREAM }),
  dtmf: (digit) => text({ event: 'dtmf', stream_id: TELNYX_STREAM, occurred_at: '2024-01-01T00:00:00Z', sequence_number: '9', dtmf: { digit } }),
  echoMark: (sent) => text({ event: 'mark', sequence_number: '10', stream_id: TELNYX_STREAM, mark: JSON.parse(sent.data as string).mark }),
  stop: text({ event: 'stop', sequence_number: '12', stop: { user_id: 'u', call_control_id: 'v3:x' }, stream_id: TELNYX_STREAM }),
  unknownEvent: text({ event: 'ping', stream_id: TELNYX_STREAM }),
  // As pipecat's TelnyxFrameSerializer writes them: Python's json.dumps spacing, no stream id.
  runtimeMedia: (payload) => ({ data: Buffer.from(`{"event": "media", "media": {"payload": "${payload.toString('base64')}"}}`), binary: false }),
  runtimeMark: (name) => text({ event: 'mark', mark: { name } }),
  runtimeClear: { data: Buffer.from('{"event": "clear"}'), binary: false },
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => {
    const state = JSON.parse(start).start.client_state;
    return state === undefined ? start : start + Buffer.from(state, 'base64').toString('utf8');
  },
};

const vonage: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
  frameBytes: 640,
  carriesAgent: false,
  connected: null,
  start: text({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=16000', agent_id: 'agent-1', call_id: 'call-1', token: SECRET, uuid: 'aaaaaaaa-bbbb-cccc-dddd-0123456789ab' }),
  unsupportedCodecStart: text({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=24000' }),
  // Vonage frames carry no position: the nth frame is at n × 20 ms because n came before it.
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(641)),
  dtmf: (digit) => text({ event: 'websocket:dtmf', digit, duration: 260 }),
  echoMark: (sent) => text({ event: 'websocket:notify', payload: JSON.parse(sent.data as string).payload }),
  stop: null,
  unknownEvent: text({ event: 'websocket:party' }),
  runtimeMedia: (payload) => binary(payload),
  runtimeMark: (name) => text({ action: 'notify', payload: { name } }),
  runtimeClear: text({ action: 'clear' }),
  runtimeMarkEvent: () => ({ type: 'other' }),
  reveal: (start) => start,
};

const GENESYS_SESSION = 'e160e428-53e2-487c-977d-96989bf5c99d';
const audiohook = (type: string, seq: number, parameters: object) =>
  text({ version: '2', id: GENESYS_SESSION, type, seq, serverseq: 0, position: 'PT0S', parameters });
const audiohookOpen = (media: object[], customConfig: object) =>
  audiohook('open', 1, {
    organizationId: 'd7934305-0972-4844-938e-9060eef73d05',
    conversationId: '090eaa2f-72fa-480a-83e0-8667ff89c0ec',
    participant: { id: '883efee8-3d6c-4537-b500-6d7ca4b92fa0', ani: '+1-555-555-1234', aniName: 'John Doe', dnis: '+1-800-555-6789' },
    media,
    language: 'en-US',
    customConfig,
  });
const unusedFrame = binary(Buffer.alloc(0));
const genesys: ProviderKit = {
  upgrade: { headers: { 'x-api-key': SECRET }, query: {} },
  format: { codec: 'pcmu', sampleRate: 8000 },
  frameBytes: 160,
  carriesAgent: false,
  connected: null,
  // The first offer callrec cannot record is passed over for the caller's channel alone.
  start: audiohookOpen([{ type: 'audio', format: 'L16', channels: ['external'], rate: 16000 }, { type: 'audio', format: 'PCMU', channels: ['external'], rate: 8000 }], { agent_id: 'agent-1', call_id: 'call-1' }),
  unsupportedCodecStart: audiohookOpen([{ type: 'audio', format: 'L16', channels: ['external', 'internal'], rate: 16000 }], {}),
  // Frames carry no position: the nth frame is at n × 20 ms because n frames came before it.
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(0)),
  dtmf: null,
  oneWay: true,
  echoMark: () => unusedFrame,
  stop: audiohook('close', 2, { reason: 'end' }),
  unknownEvent: audiohook('hello', 2, {}),
  runtimeMedia: () => unusedFrame,
  runtimeMark: () => unusedFrame,
  runtimeClear: unusedFrame,
  runtimeMarkEvent: () => ({ type: 'other' }),
  reveal: (start) => start,
};

export const KITS: Record<Provider, ProviderKit> = { twilio, telnyx, vonage, genesys };
