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
  const media = {
    track: leg === 'caller' ? 'inbound' : 'outbound',
    chunk: String(n + 1),
    timestamp: String(n * 20),
    payload,
  };
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
  /** Null where DTMF does not come over the stream (Bandwidth: `<Gather>` posts it to a webhook; FreeSWITCH `mod_audio_stream`; AudioHook Monitor). */
  dtmf: ((digit: string) => Frame) | null;
  /** The provider only listens (AudioHook Monitor): no marks, no audio back, no runtime; the runtime fields go unused. */
  oneWay?: boolean;
  /** What the provider sends back once playback reaches a mark callrec sent; null where it has no marks (Bandwidth). */
  echoMark: ((sent: WireMessage) => Frame) | null;
  stop: Frame | null;
  /** Null where any text after the start is the user's own (FreeSWITCH `send_text`). */
  unknownEvent: Frame | null;
  /** What a runtime speaking the provider's protocol sends; marks and clear null where it has none. */
  runtimeMedia(payload: Buffer): Frame;
  runtimeMark: ((name: string) => Frame) | null;
  runtimeClear: Frame | null;
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
    start: {
      streamSid: TWILIO_SID,
      tracks: ['inbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 16000, channels: 1 },
    },
    streamSid: TWILIO_SID,
  }),
  media: (leg, n, payload) =>
    trackMedia(leg, n, payload.toString('base64'), { sequenceNumber: String(n + 3), streamSid: TWILIO_SID }),
  badPayload: (n) => trackMedia('caller', n, 'not base64!', { sequenceNumber: String(n + 3), streamSid: TWILIO_SID }),
  dtmf: (digit) =>
    text({ event: 'dtmf', streamSid: TWILIO_SID, sequenceNumber: '5', dtmf: { track: 'inbound_track', digit } }),
  echoMark: (sent) => text({ ...JSON.parse(sent.data as string), sequenceNumber: '9' }),
  stop: text({
    event: 'stop',
    sequenceNumber: '10',
    streamSid: TWILIO_SID,
    stop: { accountSid: 'AC1', callSid: 'CA1' },
  }),
  unknownEvent: text({ event: 'hello', streamSid: TWILIO_SID }),
  runtimeMedia: (payload) =>
    text({ event: 'media', streamSid: TWILIO_SID, media: { payload: payload.toString('base64') } }),
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
  media: (leg, n, payload) =>
    trackMedia(leg, n, payload.toString('base64'), { sequence_number: String(n + 3), stream_id: TELNYX_STREAM }),
  // Three bytes: not a whole number of 16-bit samples.
  badPayload: (n) => trackMedia('caller', n, 'AAEC', { sequence_number: String(n + 3), stream_id: TELNYX_STREAM }),
  dtmf: (digit) =>
    text({
      event: 'dtmf',
      stream_id: TELNYX_STREAM,
      occurred_at: '2024-01-01T00:00:00Z',
      sequence_number: '9',
      dtmf: { digit },
    }),
  echoMark: (sent) =>
    text({
      event: 'mark',
      sequence_number: '10',
      stream_id: TELNYX_STREAM,
      mark: JSON.parse(sent.data as string).mark,
    }),
  stop: text({
    event: 'stop',
    sequence_number: '12',
    stop: { user_id: 'u', call_control_id: 'v3:x' },
    stream_id: TELNYX_STREAM,
  }),
  unknownEvent: text({ event: 'ping', stream_id: TELNYX_STREAM }),
  // As pipecat's TelnyxFrameSerializer writes them: Python's json.dumps spacing, no stream id.
  runtimeMedia: (payload) => ({
    data: Buffer.from(`{"event": "media", "media": {"payload": "${payload.toString('base64')}"}}`),
    binary: false,
  }),
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
  start: text({
    event: 'websocket:connected',
    'content-type': 'audio/l16;rate=16000',
    agent_id: 'agent-1',
    call_id: 'call-1',
    token: SECRET,
    uuid: 'aaaaaaaa-bbbb-cccc-dddd-0123456789ab',
  }),
  unsupportedCodecStart: text({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=22050' }),
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

const PLIVO_STREAM = '20170ada-f610-433b-8758-c02a2aab3662';
const plivoMedia = (leg: 'caller' | 'agent', n: number, payload: string): Frame =>
  text({
    event: 'media',
    sequenceNumber: n + 2,
    streamId: PLIVO_STREAM,
    // `timestamp` is wall-clock ms: the frame is placed by `chunk`, each track's count from 1.
    media: {
      track: leg === 'caller' ? 'inbound' : 'outbound',
      timestamp: String(1705312200000 + n * 20 + 7),
      chunk: n + 1,
      payload,
    },
    extra_headers: 'agent_id=agent-1;call_id=call-1',
  });
const plivo: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'pcmu', sampleRate: 8000 },
  frameBytes: 160,
  carriesAgent: true,
  connected: null,
  start: text({
    event: 'start',
    sequenceNumber: 1,
    start: {
      callId: '12345678-1234-1234-1234-123456789abc',
      streamId: PLIVO_STREAM,
      accountId: 'MAXXXXXXXXXXXXXXXXXX',
      tracks: ['inbound', 'outbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000 },
    },
    extra_headers: `agent_id=agent-1;call_id=call-1;token=${SECRET}`,
  }),
  unsupportedCodecStart: text({
    event: 'start',
    sequenceNumber: 1,
    start: {
      callId: 'c',
      streamId: PLIVO_STREAM,
      tracks: ['inbound'],
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 16000 },
    },
  }),
  media: (leg, n, payload) => plivoMedia(leg, n, payload.toString('base64')),
  badPayload: (n) => plivoMedia('caller', n, 'not base64!'),
  dtmf: (digit) => text({ event: 'dtmf', sequenceNumber: 9, streamId: PLIVO_STREAM, dtmf: { digit } }),
  echoMark: (sent) =>
    text({
      event: 'playedStream',
      sequenceNumber: 10,
      streamId: PLIVO_STREAM,
      name: JSON.parse(sent.data as string).name,
    }),
  stop: text({ event: 'stop', sequenceNumber: 11, streamId: PLIVO_STREAM }),
  unknownEvent: text({ event: 'hello', streamId: PLIVO_STREAM }),
  runtimeMedia: (payload) =>
    text({
      event: 'playAudio',
      media: { contentType: 'audio/x-mulaw', sampleRate: 8000, payload: payload.toString('base64') },
    }),
  runtimeMark: (name) => text({ event: 'checkpoint', streamId: PLIVO_STREAM, name }),
  runtimeClear: text({ event: 'clearAudio', streamId: PLIVO_STREAM }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const EXOTEL_STREAM = 'a5f9c5d2e1b84c3e9f7d6a1b2c3d4e5f';
/** The caller's frames as the default stream sends them (no track), the agent's as a `both` stream does. */
const exotelMedia = (leg: 'caller' | 'agent', n: number, payload: string): Frame =>
  text({
    event: 'media',
    sequence_number: n + 2,
    stream_sid: EXOTEL_STREAM,
    media: { ...(leg === 'agent' && { track: 'outbound' }), chunk: n + 1, timestamp: String(n * 20), payload },
  });
const exotel: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'l16', sampleRate: 8000, byteOrder: 'le' },
  frameBytes: 320,
  carriesAgent: true,
  connected: text({ event: 'connected' }),
  start: text({
    event: 'start',
    sequence_number: 1,
    stream_sid: EXOTEL_STREAM,
    start: {
      stream_sid: EXOTEL_STREAM,
      call_sid: 'b6a2f0c1d3e4f5a6b7c8d9e0f1a2b3c4',
      account_sid: 'exotel-account',
      from: '09999999999',
      to: '08047491899',
      custom_parameters: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
      media_format: { encoding: 'base64', sample_rate: '8000', bit_rate: '128kbps' },
    },
  }),
  unsupportedCodecStart: text({
    event: 'start',
    sequence_number: 1,
    stream_sid: EXOTEL_STREAM,
    start: { stream_sid: EXOTEL_STREAM, media_format: { encoding: 'base64', sample_rate: '44100' } },
  }),
  media: (leg, n, payload) => exotelMedia(leg, n, payload.toString('base64')),
  // Three bytes: not a whole number of 16-bit samples.
  badPayload: (n) => exotelMedia('caller', n, 'AAEC'),
  dtmf: (digit) =>
    text({ event: 'dtmf', sequence_number: 9, stream_sid: EXOTEL_STREAM, dtmf: { duration: '300', digit } }),
  echoMark: (sent) =>
    text({ event: 'mark', sequence_number: 10, stream_sid: EXOTEL_STREAM, mark: JSON.parse(sent.data as string).mark }),
  stop: text({
    event: 'stop',
    sequence_number: 11,
    stream_sid: EXOTEL_STREAM,
    stop: { call_sid: 'b6a2', account_sid: 'exotel-account', reason: 'callended' },
  }),
  unknownEvent: text({ event: 'hello', stream_sid: EXOTEL_STREAM }),
  runtimeMedia: (payload) =>
    text({ event: 'media', stream_sid: EXOTEL_STREAM, media: { payload: payload.toString('base64') } }),
  runtimeMark: (name) => text({ event: 'mark', stream_sid: EXOTEL_STREAM, mark: { name } }),
  runtimeClear: text({ event: 'clear', stream_sid: EXOTEL_STREAM }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const BANDWIDTH_IDS = { accountId: '5555555', callId: 'c-2a913f94-6a486f3a-3cae-4034-bcc3-f0c9fa77ca2f' };
const bandwidthMetadata = {
  ...BANDWIDTH_IDS,
  streamId: 's-2a913f94-93e1c5b4-4ca3-4b3a-87d6-0f5a1bc29e2f',
  streamName: 'callrec',
  tracks: ['inbound', 'outbound'].map((name) => ({ name, mediaFormat: { encoding: 'audio/PCMU', sampleRate: 8000 } })),
};
const bandwidthMedia = (leg: 'caller' | 'agent', n: number, payload: string): Frame =>
  text({
    ...BANDWIDTH_IDS,
    eventType: 'media',
    track: leg === 'caller' ? 'inbound' : 'outbound',
    sequenceNumber: 2 * n + (leg === 'caller' ? 1 : 2),
    payload,
  });
const bandwidth: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'pcmu', sampleRate: 8000 },
  frameBytes: 160,
  carriesAgent: true,
  connected: null,
  start: text({
    ...BANDWIDTH_IDS,
    eventType: 'start',
    metadata: bandwidthMetadata,
    streamParams: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
  }),
  unsupportedCodecStart: text({
    ...BANDWIDTH_IDS,
    eventType: 'start',
    metadata: {
      ...bandwidthMetadata,
      tracks: [{ name: 'inbound', mediaFormat: { encoding: 'audio/OPUS', sampleRate: 48000 } }],
    },
  }),
  // Frames carry no position: each track's nth frame is at n × 20 ms because n came before it.
  media: (leg, n, payload) => bandwidthMedia(leg, n, payload.toString('base64')),
  badPayload: (n) => bandwidthMedia('caller', n, 'not base64!'),
  dtmf: null,
  echoMark: null,
  stop: text({ ...BANDWIDTH_IDS, eventType: 'stop', metadata: bandwidthMetadata }),
  unknownEvent: text({ ...BANDWIDTH_IDS, eventType: 'hello' }),
  runtimeMedia: (payload) =>
    text({ eventType: 'playAudio', media: { contentType: 'audio/pcmu', payload: payload.toString('base64') } }),
  runtimeMark: null,
  runtimeClear: text({ eventType: 'clear' }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

/** SignalWire's `<Stream>` speaks Twilio's protocol: Twilio's messages, at its own endpoint. */
const JAMBONZ_CALL = 'b6b8ef0b-3c4d-4a3e-9d2f-6f3c1e2a9b10';
const jambonz: ProviderKit = {
  upgrade: { headers: { 'sec-websocket-protocol': 'audio.jambonz.org' }, query: {} },
  format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
  frameBytes: 640,
  carriesAgent: false,
  connected: null,
  start: text({
    callSid: JAMBONZ_CALL,
    direction: 'inbound',
    from: '+15083084809',
    to: '+15083728299',
    callId: '2b5f6c1e-9a7d-123d-6a91-0242ac120002',
    accountSid: 'fef61e75-cec3-496c-a7bc-8368e4d2a2ce',
    applicationSid: '0e0681b0-c7e4-4ba9-8d0e-0e1a3d0e1b2c',
    sampleRate: 16000,
    mixType: 'mono',
    metadata: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
  }),
  unsupportedCodecStart: text({ callSid: JAMBONZ_CALL, sampleRate: 22050, mixType: 'mono' }),
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(641)),
  dtmf: (digit) => text({ event: 'dtmf', dtmf: digit, duration: '250' }),
  echoMark: (sent) => text({ type: 'mark', data: { ...JSON.parse(sent.data as string).data, event: 'playout' } }),
  stop: null,
  unknownEvent: text({ type: 'hello' }),
  runtimeMedia: (payload) => binary(payload),
  runtimeMark: (name) => text({ type: 'mark', data: { name } }),
  runtimeClear: text({ type: 'killAudio' }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const freeswitch: ProviderKit = {
  upgrade: { headers: {}, query: {} },
  format: { codec: 'l16', sampleRate: 8000, byteOrder: 'le' },
  frameBytes: 320,
  carriesAgent: false,
  connected: null,
  // The dialplan's metadata argument: `uuid_audio_stream ${uuid} start wss://… mono 8k {"uuid":…}`.
  start: text({
    uuid: '7c3d2a1e-5b6f-4e8d-9c0a-1b2c3d4e5f60',
    sampleRate: '8k',
    mixType: 'mono',
    agent_id: 'agent-1',
    call_id: 'call-1',
    token: SECRET,
  }),
  unsupportedCodecStart: text({ sampleRate: '11025', mixType: 'mono' }),
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(321)),
  dtmf: null,
  echoMark: null,
  stop: null,
  unknownEvent: null,
  runtimeMedia: (payload) =>
    text({
      type: 'streamAudio',
      data: { audioDataType: 'raw', sampleRate: 8000, audioData: payload.toString('base64') },
    }),
  runtimeMark: null,
  runtimeClear: null,
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const plain = (line: string): Frame => ({ data: Buffer.from(line), binary: false });
const asterisk: ProviderKit = {
  // Dial(WebSocket/connection1/c(slin16)v(agent_id=…,call_id=…,token=…)): the parameters are on the URL.
  upgrade: {
    headers: { 'sec-websocket-protocol': 'media' },
    query: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
  },
  format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
  frameBytes: 640,
  carriesAgent: false,
  connected: null,
  start: plain(
    'MEDIA_START connection_id:media_connection1 channel:WebSocket/media_connection1/0x5140001a0040 channel_id:1761245643.1 format:slin16 optimal_frame_size:640 ptime:20',
  ),
  unsupportedCodecStart: plain(
    'MEDIA_START connection_id:media_connection1 channel:WebSocket/media_connection1/0x1 format:g722 optimal_frame_size:160 ptime:20',
  ),
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(641)),
  dtmf: (digit) => plain(`DTMF_END digit:${digit}`),
  echoMark: (sent) => plain((sent.data as string).replace('MARK_MEDIA', 'MEDIA_MARK_PROCESSED')),
  stop: null,
  unknownEvent: plain('MEDIA_PARTY connection_id:media_connection1'),
  runtimeMedia: (payload) => binary(payload),
  runtimeMark: (name) => plain(`MARK_MEDIA correlation_id:${name}`),
  runtimeClear: plain('FLUSH_MEDIA'),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const ACS_START_MS = Date.parse('2025-03-11T09:30:00.000Z');
const azure: ProviderKit = {
  upgrade: {
    headers: { 'x-ms-call-connection-id': '401f3500-62bd-46a1-a8f8-2a0d5f9b8c11' },
    query: { agent_id: 'agent-1', call_id: 'call-1', token: SECRET },
  },
  format: { codec: 'l16', sampleRate: 16000, byteOrder: 'le' },
  frameBytes: 640,
  carriesAgent: true,
  connected: null,
  start: text({
    kind: 'AudioMetadata',
    audioMetadata: {
      subscriptionId: '89e8cb59-b991-48b0-b154-1db84f16a077',
      encoding: 'PCM',
      sampleRate: 16000,
      channels: 1,
      length: 640,
    },
  }),
  unsupportedCodecStart: text({
    kind: 'AudioMetadata',
    audioMetadata: { subscriptionId: 'x', encoding: 'OPUS', sampleRate: 16000, channels: 1, length: 640 },
  }),
  media: (leg, n, payload) =>
    text({
      kind: 'AudioData',
      audioData: {
        timestamp: new Date(ACS_START_MS + n * 20).toISOString(),
        participantRawID:
          leg === 'caller'
            ? '4:+15551234567'
            : '8:acs:bc2a8a4b-0000-4a39-8c2e-41f0e3b3f0aa_00000020-1111-2222-3333-444455556666',
        data: payload.toString('base64'),
        silent: false,
      },
    }),
  badPayload: (n) =>
    text({
      kind: 'AudioData',
      audioData: {
        timestamp: new Date(ACS_START_MS + n * 20).toISOString(),
        participantRawID: '4:+15551234567',
        data: 'AAEC',
        silent: false,
      },
    }),
  dtmf: (digit) => text({ kind: 'DtmfData', dtmfData: { data: digit } }),
  echoMark: null,
  stop: null,
  unknownEvent: text({ kind: 'TranscriptionData' }),
  runtimeMedia: (payload) =>
    text({ Kind: 'AudioData', AudioData: { Data: payload.toString('base64') }, StopAudio: null }),
  runtimeMark: null,
  runtimeClear: text({ Kind: 'StopAudio', AudioData: null, StopAudio: {} }),
  runtimeMarkEvent: (name) => ({ type: 'mark', name }),
  reveal: (start) => start,
};

const GENESYS_SESSION = 'e160e428-53e2-487c-977d-96989bf5c99d';
const audiohook = (type: string, seq: number, parameters: object) =>
  text({ version: '2', id: GENESYS_SESSION, type, seq, serverseq: 0, position: 'PT0S', parameters });
const audiohookOpen = (media: object[], customConfig: object) =>
  audiohook('open', 1, {
    organizationId: 'd7934305-0972-4844-938e-9060eef73d05',
    conversationId: '090eaa2f-72fa-480a-83e0-8667ff89c0ec',
    participant: {
      id: '883efee8-3d6c-4537-b500-6d7ca4b92fa0',
      ani: '+1-555-555-1234',
      aniName: 'John Doe',
      dnis: '+1-800-555-6789',
    },
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
  start: audiohookOpen(
    [
      { type: 'audio', format: 'L16', channels: ['external'], rate: 16000 },
      { type: 'audio', format: 'PCMU', channels: ['external'], rate: 8000 },
    ],
    { agent_id: 'agent-1', call_id: 'call-1' },
  ),
  unsupportedCodecStart: audiohookOpen(
    [{ type: 'audio', format: 'L16', channels: ['external', 'internal'], rate: 16000 }],
    {},
  ),
  // Frames carry no position: the nth frame is at n × 20 ms because n frames came before it.
  media: (_leg, _n, payload) => binary(payload),
  badPayload: () => binary(Buffer.alloc(0)),
  dtmf: null,
  oneWay: true,
  echoMark: null,
  stop: audiohook('close', 2, { reason: 'end' }),
  unknownEvent: audiohook('hello', 2, {}),
  runtimeMedia: () => unusedFrame,
  runtimeMark: null,
  runtimeClear: null,
  runtimeMarkEvent: () => ({ type: 'other' }),
  reveal: (start) => start,
};

export const KITS: Record<Provider, ProviderKit> = {
  twilio,
  telnyx,
  vonage,
  signalwire: twilio,
  plivo,
  exotel,
  bandwidth,
  jambonz,
  freeswitch,
  asterisk,
  azure,
  genesys,
};
