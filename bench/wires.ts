/**
 * How the load generator speaks each provider it can load: the same μ-law 8 kHz audio in each
 * provider's own messages, so a fork stream on one provider is measured against the same audio
 * on another. Hand-written message text (no JSON.stringify per frame), as the generator builds
 * each tick's messages once for every socket.
 */
import { AUDIOHOOK_KEY_HEADER } from '../src/protocols/index.js';
import type { Provider } from '../src/protocols/types.js';
import { payloadAt, wireStream, type LoadStream } from './load.js';

export type Track = 'inbound' | 'outbound';

export interface LoadWire {
  /** What the stream sends before its first frame: its start (and any connected message before it). */
  start(callId: string, tracks: Track[], params: Record<string, string>): string[];
  /** One track's 20 ms frame at `tick` (`sequence` counts the stream's messages). */
  media(track: Track, tick: number, sequence: number, payload: string): string;
  stop: string;
}

const FRAME_MS = 20;

const twilio: LoadWire = {
  start: (callId, tracks, params) => [
    JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }),
    JSON.stringify({
      event: 'start',
      sequenceNumber: '1',
      start: {
        accountSid: 'ACbench',
        streamSid: `MZ${callId}`,
        callSid: callId,
        tracks,
        customParameters: { ...params, call_id: callId },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: `MZ${callId}`,
    }),
  ],
  media: (track, tick, sequence, payload) =>
    `{"event":"media","sequenceNumber":"${sequence}","media":{"track":"${track}","chunk":"${tick + 1}","timestamp":"${tick * FRAME_MS}","payload":"${payload}"},"streamSid":"MZbench"}`,
  stop: '{"event":"stop","sequenceNumber":"0","streamSid":"MZbench"}',
};

const telnyx: LoadWire = {
  start: (callId, _tracks, params) => [
    JSON.stringify({ event: 'connected', version: '1.0.0' }),
    JSON.stringify({
      event: 'start',
      sequence_number: '1',
      start: {
        user_id: 'bench',
        call_control_id: `v3:${callId}`,
        custom_parameters: { ...params, call_id: callId },
        media_format: { encoding: 'PCMU', sample_rate: 8000, channels: 1 },
      },
      stream_id: `st-${callId}`,
    }),
  ],
  media: (track, tick, sequence, payload) =>
    `{"event":"media","sequence_number":"${sequence}","media":{"track":"${track}","chunk":"${tick + 1}","timestamp":"${tick * FRAME_MS}","payload":"${payload}"},"stream_id":"st-bench"}`,
  stop: '{"event":"stop","sequence_number":"0","stream_id":"st-bench"}',
};

/** Plivo repeats `extra_headers` on every message, so the bench does too. */
const PLIVO_HEADERS = 'agent_id=bench-agent;region=bench';
const plivo: LoadWire = {
  start: (callId, tracks, params) => [
    JSON.stringify({
      event: 'start',
      sequenceNumber: 1,
      start: {
        callId,
        streamId: `st-${callId}`,
        accountId: 'MABENCH',
        tracks,
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000 },
      },
      extra_headers: Object.entries({ ...params, call_id: callId })
        .map(([key, value]) => `${key}=${value}`)
        .join(';'),
    }),
  ],
  media: (track, tick, sequence, payload) =>
    `{"event":"media","sequenceNumber":${sequence},"streamId":"st-bench","media":{"track":"${track}","timestamp":"${1735732800000 + tick * FRAME_MS}","chunk":${tick + 1},"payload":"${payload}"},"extra_headers":"${PLIVO_HEADERS}"}`,
  stop: '{"event":"stop","sequenceNumber":0,"streamId":"st-bench"}',
};

/** Exotel's μ-law option (`audio/x-mulaw;rate=8000`) with both tracks, each frame naming its track. */
const exotel: LoadWire = {
  start: (callId, _tracks, params) => [
    '{"event":"connected"}',
    JSON.stringify({
      event: 'start',
      sequence_number: 1,
      stream_sid: `sid-${callId}`,
      start: {
        stream_sid: `sid-${callId}`,
        call_sid: callId,
        account_sid: 'bench',
        from: '0',
        to: '0',
        custom_parameters: { ...params, call_id: callId },
        media_format: { encoding: 'audio/x-mulaw', sample_rate: '8000', bit_rate: '64kbps' },
      },
    }),
  ],
  media: (track, tick, sequence, payload) =>
    `{"event":"media","sequence_number":${sequence},"stream_sid":"sid-bench","media":{"track":"${track}","chunk":${tick + 1},"timestamp":"${tick * FRAME_MS}","payload":"${payload}"}}`,
  stop: '{"event":"stop","sequence_number":0,"stream_sid":"sid-bench","stop":{"reason":"callended"}}',
};

const bandwidth: LoadWire = {
  start: (callId, tracks, params) => [
    JSON.stringify({
      accountId: 'bench',
      callId,
      eventType: 'start',
      metadata: {
        accountId: 'bench',
        callId,
        streamId: `s-${callId}`,
        streamName: 'bench',
        tracks: tracks.map((name) => ({ name, mediaFormat: { encoding: 'audio/PCMU', sampleRate: 8000 } })),
      },
      streamParams: { ...params, call_id: callId },
    }),
  ],
  media: (track, _tick, sequence, payload) =>
    `{"accountId":"bench","callId":"c-bench","eventType":"media","track":"${track}","sequenceNumber":${sequence},"payload":"${payload}"}`,
  stop: '{"accountId":"bench","callId":"c-bench","eventType":"stop"}',
};

/**
 * The providers the generator can load; SignalWire speaks Twilio's messages. Vonage's one mixed
 * track in binary L16 frames carries other audio than a both-tracks μ-law fork, so it has none.
 */
export const LOAD_WIRES: Partial<Record<Provider, LoadWire>> = {
  twilio,
  signalwire: twilio,
  telnyx,
  plivo,
  exotel,
  bandwidth,
};

const AUDIOHOOK_SESSION = '4a8e6f0e-7c1b-4a5f-9d0e-6b1c2d3e4f50';

/**
 * Genesys AudioHook Monitor: `open` (the key as X-API-KEY, the agent in Custom Config), then one
 * binary frame a tick with both channels interleaved, the same μ-law as the other wires carry.
 */
function audiohookStream(tracks: Track[]): LoadStream {
  return {
    url: (base) => base,
    headers: (params) => ({ [AUDIOHOOK_KEY_HEADER]: params.token ?? '' }),
    start: (callId, params) => [
      {
        data: Buffer.from(
          JSON.stringify({
            version: '2',
            id: AUDIOHOOK_SESSION,
            type: 'open',
            seq: 1,
            serverseq: 0,
            position: 'PT0S',
            parameters: {
              organizationId: AUDIOHOOK_SESSION,
              conversationId: callId,
              participant: { id: AUDIOHOOK_SESSION, ani: '+15550100', aniName: 'bench', dnis: '+15550199' },
              media: [
                {
                  type: 'audio',
                  format: 'PCMU',
                  channels: tracks.map((t) => (t === 'inbound' ? 'external' : 'internal')),
                  rate: 8000,
                },
              ],
              customConfig: { agent_id: params.agent_id, call_id: callId },
            },
          }),
        ),
        binary: false,
      },
    ],
    frames: (tick) => {
      const payload = Buffer.from(payloadAt(tick), 'base64');
      const frame = Buffer.alloc(payload.length * tracks.length);
      for (let i = 0; i < frame.length; i++) frame[i] = payload[Math.floor(i / tracks.length)];
      return [{ data: frame, binary: true }];
    },
    stop: JSON.stringify({
      version: '2',
      id: AUDIOHOOK_SESSION,
      type: 'close',
      seq: 2,
      serverseq: 1,
      position: 'PT0S',
      parameters: { reason: 'end' },
    }),
  };
}

/**
 * A provider's fork carrying the generator's own audio (so providers compare on equal terms), or
 * null where the generator has none for it (its capture in fixtures/ serves instead).
 */
export function sameAudioStream(provider: Provider, tracks: Track[]): LoadStream | null {
  const wire = LOAD_WIRES[provider];
  if (wire) return wireStream(wire, tracks);
  return provider === 'genesys' ? audiohookStream(tracks) : null;
}
