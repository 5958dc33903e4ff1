// Built from: Genesys Cloud Developer Center, "AudioHook Protocol Specification" (version 2), and
// the message shapes of purecloudlabs/audiohook-reference-implementation.
import { CallrecError } from '../errors.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import type {
  AdapterFactory,
  ProviderAdapter,
  ProviderEvent,
  RuntimeEvent,
  StreamStart,
  UpgradeInfo,
  WireMessage,
} from './types.js';
import {
  checkMessageSize,
  flattenParams,
  headerValue,
  malformed,
  NOTHING,
  objectField,
  parseJsonObject,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** Where Genesys puts callrec's API key, on the upgrade request. */
export const AUDIOHOOK_KEY_HEADER = 'x-api-key';
/** The conversation id of a connection probe: answered `opened`, recorded nowhere. */
export const PROBE_CONVERSATION = '00000000-0000-0000-0000-000000000000';

const FORMAT: MediaFormat = { codec: 'pcmu', sampleRate: 8000 };
const SAMPLES_PER_MS = FORMAT.sampleRate / 1000;
/** AudioHook's channel names: `external` is the customer (the caller), `internal` the agent. */
const LEG_OF_CHANNEL: Record<string, Leg> = { external: 'caller', internal: 'agent' };

/** An AudioHook duration (`PT1.25S`) in samples of the 8 kHz stream. */
function durationSamples(o: JsonObject, name: string, path: string): number {
  const match = /^PT(\d{1,9}(?:\.\d{1,9})?)S$/.exec(stringField(o, name, path));
  if (!match) throw malformed(path, 'not an ISO 8601 duration in seconds');
  return Math.round(Number(match[1]) * FORMAT.sampleRate);
}

/** The offered channel list as legs, when it is one callrec records: PCMU 8 kHz, one or both channels, each once. */
function legsOf(offer: unknown): Leg[] | null {
  if (typeof offer !== 'object' || offer === null) return null;
  const { type, format, rate, channels } = offer as JsonObject;
  if (type !== 'audio' || format !== 'PCMU' || rate !== FORMAT.sampleRate || !Array.isArray(channels)) return null;
  const legs = channels.map((c) => (typeof c === 'string' ? LEG_OF_CHANNEL[c] : undefined));
  if (legs.length < 1 || legs.length > 2 || legs.some((l) => l === undefined) || legs[0] === legs[1]) return null;
  return legs as Leg[];
}

function describeOffer(offers: unknown[]): string {
  return offers
    .map((o) =>
      typeof o === 'object' && o !== null
        ? `${String((o as JsonObject).format)}/${String((o as JsonObject).rate)}`
        : '?',
    )
    .join(', ')
    .slice(0, 80);
}

/**
 * One AudioHook Monitor session. Text frames are the session protocol (`open`, `ping`,
 * `paused`, `resumed`, `discarded`, `update`, `error`, `close`), answered with `opened`, `pong`,
 * `closed` numbered by `seq`/`clientseq`; binary frames are interleaved PCMU of the negotiated
 * channels, placed by the samples the stream has carried, never by arrival.
 */
class GenesysAdapter implements ProviderAdapter {
  readonly provider = 'genesys' as const;
  #sessionId = '';
  /** Our last message's `seq`, and the client's last `seq` (each message must be the next). */
  #seq = 0;
  #clientSeq = 0;
  /** The negotiated channels in wire order, once opened. */
  #channels: Leg[] | null = null;
  /** Stream position in samples: audio received plus audio Genesys discarded (its `position`). */
  #position = 0;
  /** Time the stream spent paused, in samples: Genesys's position stands still then, the call's clock does not. */
  #paused = 0;
  /** Per-leg scratch for de-interleaving a stereo frame, reused frame to frame. */
  #left = Buffer.alloc(0);
  #right = Buffer.alloc(0);
  readonly #stereo = { type: 'stereo' as const, timestampMs: 0, caller: this.#left, agent: this.#right };

  constructor(private readonly upgrade: UpgradeInfo) {}

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) return this.#audio(data);
    const message = parseJsonObject(data);
    const type = stringField(message, 'type', 'type');
    const seq = message.seq;
    if (seq !== this.#clientSeq + 1) throw malformed('seq', `expected ${this.#clientSeq + 1}`);
    this.#clientSeq = seq;
    const parameters = objectField(message, 'parameters', 'parameters');
    if (type === 'open') return this.#open(message, parameters);
    if (this.#sessionId === '') throw new CallrecError('ERR_UNEXPECTED_MESSAGE', `"${type.slice(0, 20)}" before open`);
    switch (type) {
      case 'ping':
        return { type: 'other', reply: this.#message('pong', {}) };
      case 'paused':
        return { type: 'pause' };
      case 'resumed': {
        // Nothing was sent while paused: the pause lasted `discarded`, and the call's clock moves on by it.
        this.#paused += durationSamples(parameters, 'discarded', 'parameters.discarded');
        return { type: 'resume', atMs: this.#clockMs(this.#position) };
      }
      case 'discarded': {
        const start = durationSamples(parameters, 'start', 'parameters.start');
        const end = start + durationSamples(parameters, 'discarded', 'parameters.discarded');
        this.#position = Math.max(this.#position, end);
        return { type: 'lost', fromMs: this.#clockMs(start), toMs: this.#clockMs(end) };
      }
      case 'update':
      case 'error':
        // A language change, or the client reporting our mistake: nothing for the recording.
        return NOTHING;
      case 'close':
        return { type: 'stop', reply: this.#message('closed', {}) };
      default:
        throw unknownEvent(type);
    }
  }

  #open(message: JsonObject, parameters: JsonObject): ProviderEvent {
    if (this.#sessionId !== '') throw new CallrecError('ERR_UNEXPECTED_MESSAGE', 'a second open');
    if (message.version !== '2') throw malformed('version', 'callrec speaks AudioHook protocol version 2');
    const sessionId = stringField(message, 'id', 'id');
    const conversationId = stringField(parameters, 'conversationId', 'parameters.conversationId');
    const offers = parameters.media;
    if (!Array.isArray(offers)) throw malformed('parameters.media');
    const chosen = offers.findIndex((offer) => legsOf(offer) !== null);
    if (chosen < 0)
      throw new CallrecError(
        'ERR_UNSUPPORTED_CODEC',
        `no offered format callrec records (PCMU 8 kHz, external/internal): ${describeOffer(offers)}`,
      );
    this.#sessionId = sessionId;
    this.#channels = legsOf(offers[chosen]);
    const reply = this.#message('opened', { media: [offers[chosen]], startPaused: false });
    if (conversationId === PROBE_CONVERSATION) return { type: 'other', reply };
    const params: Record<string, string> = {};
    flattenParams(parameters.customConfig, params);
    const key = headerValue(this.upgrade.headers, AUDIOHOOK_KEY_HEADER);
    if (key !== undefined) params.token = key;
    const start: StreamStart = {
      providerCallId: conversationId,
      streamId: sessionId,
      params,
      format: FORMAT,
      // Recorded as the call's legs, caller first, whatever order the channels come in.
      legs: this.#channels!.length === 2 ? ['caller', 'agent'] : this.#channels!,
      // AudioHook Monitor only listens: nothing sent back is played.
      canSendAudio: false,
      // A transfer opens a new session for the same conversation.
      manySessions: true,
    };
    return { type: 'start', start, reply };
  }

  #audio(data: Buffer): ProviderEvent {
    const channels = this.#channels;
    if (channels === null) throw new CallrecError('ERR_UNEXPECTED_MESSAGE', 'audio before open');
    if (data.length === 0 || data.length % channels.length !== 0)
      throw new CallrecError('ERR_BAD_PAYLOAD', 'frame: empty, or not a whole number of samples on every channel');
    const samples = data.length / channels.length;
    const timestampMs = this.#clockMs(this.#position);
    this.#position += samples;
    if (channels.length === 1) return { type: 'media', leg: channels[0], timestampMs, payload: data };
    if (this.#left.length !== samples) {
      this.#left = Buffer.allocUnsafeSlow(samples);
      this.#right = Buffer.allocUnsafeSlow(samples);
    }
    for (let i = 0, j = 0; i < samples; i++, j += 2) {
      this.#left[i] = data[j];
      this.#right[i] = data[j + 1];
    }
    const first = channels[0] === 'caller';
    this.#stereo.timestampMs = timestampMs;
    this.#stereo.caller = first ? this.#left : this.#right;
    this.#stereo.agent = first ? this.#right : this.#left;
    return this.#stereo;
  }

  /** Samples of Genesys's position, as ms on the call's clock (pauses included). */
  #clockMs(position: number): number {
    return (position + this.#paused) / SAMPLES_PER_MS;
  }

  /** A server message: every one numbered, and acknowledging the client's latest. */
  #message(type: string, parameters: JsonObject): WireMessage {
    return textMessage({
      version: '2',
      id: this.#sessionId,
      type,
      seq: ++this.#seq,
      clientseq: this.#clientSeq,
      parameters,
    });
  }

  /** The server-initiated pause: Genesys answers `paused` (and after `resume`, `resumed`), which move the recording. */
  pauseMessage(paused: boolean): WireMessage {
    return this.#message(paused ? 'pause' : 'resume', {});
  }

  /** `disconnect`, once a session is open (before it, Genesys is told by the close frame alone). */
  failMessage(reason: string): WireMessage | null {
    if (this.#sessionId === '') return null;
    const unauthorized = /^ERR_(BAD_TOKEN|UNKNOWN_AGENT|MISSING_AGENT|RATE_LIMITED)\b/.test(reason);
    return this.#message('disconnect', { reason: unauthorized ? 'unauthorized' : 'error', info: reason });
  }

  parseRuntimeMessage(): RuntimeEvent {
    throw noAudioBack();
  }

  mediaMessage(): WireMessage {
    throw noAudioBack();
  }

  markMessage(): null {
    return null;
  }

  clearMessage(): null {
    return null;
  }

  runtimeStartMessage(): WireMessage {
    throw noAudioBack();
  }
}

function noAudioBack(): CallrecError {
  return new CallrecError(
    'ERR_BAD_PARAMETER',
    'AudioHook Monitor plays nothing back: no runtime, no prompt (fork only)',
  );
}

/** Genesys Cloud AudioHook Monitor. */
export const genesys: AdapterFactory = (upgrade) => new GenesysAdapter(upgrade);
