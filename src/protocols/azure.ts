// Built from: Azure Communication Services docs, "Audio streaming overview" and the Call
// Automation SDK's streaming data types (AudioMetadata, AudioData, DtmfData inbound; AudioData
// and StopAudio outbound for bidirectional streaming). Inbound keys are camelCase; the SDK's
// OutStreamingData and Microsoft's samples write outbound ones in PascalCase
// (`{"Kind":"AudioData","AudioData":{"Data":…},"StopAudio":null}`), other clients camelCase:
// https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/audio-streaming-quickstart
import type { Leg } from '../../media/types.js';
import { LegReaders, PcmWriter, ReplyReader, wireFormat } from './pcm.js';
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
  beforeStart,
  checkMessageSize,
  headerValue,
  malformed,
  NOTHING,
  optionalString,
  parseJsonObject,
  ScratchDecoder,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** The call's id as ACS names it on the WebSocket upgrade. */
export const AZURE_CALL_HEADER = 'x-ms-call-connection-id';

/** ACS writes inbound keys in camelCase and the SDK's outbound ones in PascalCase; either is read. */
function field(o: JsonObject, name: string): unknown {
  return o[name] ?? o[name[0].toUpperCase() + name.slice(1)];
}

function objectOf(o: JsonObject, name: string): JsonObject {
  const value = field(o, name);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(name);
  return value as JsonObject;
}

function stringOf(o: JsonObject, name: string, path: string): string {
  const value = field(o, name);
  if (typeof value !== 'string') throw malformed(path);
  return value;
}

/**
 * Azure Communication Services audio streaming. Unmixed streams carry each participant's audio
 * under its raw id: the caller is the participant named by `?caller=` on the transport URL, or
 * without it a phone participant (`4:+…`); any other participant is the agent. Without `?caller=`
 * a second participant of one kind takes the other leg; a third is not recorded. Mixed audio (no
 * participant) is the caller's leg. Frames are placed by their timestamps, from the first frame's.
 */
class AzureAdapter implements ProviderAdapter {
  readonly provider = 'azure' as const;
  #writer: PcmWriter | undefined;
  /** Each leg's converter (its own resampler state and scratch). */
  #readers: LegReaders | undefined;
  #reply: ReplyReader | undefined;
  readonly #legs = new Map<string, Leg | null>();
  #firstMs: number | undefined;
  /** Frames' base64 decoded into reused memory (the frame path allocates no payload). */
  readonly #decoder = new ScratchDecoder();

  constructor(private readonly upgrade: UpgradeInfo) {}

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(data);
    const kind = stringOf(message, 'kind', 'kind');
    switch (kind) {
      case 'AudioMetadata':
        return { type: 'start', start: this.#start(objectOf(message, 'audioMetadata')) };
      case 'AudioData':
        return this.#audio(objectOf(message, 'audioData'));
      case 'DtmfData':
        return { type: 'dtmf', digit: stringOf(objectOf(message, 'dtmfData'), 'data', 'dtmfData.data') };
      default:
        throw unknownEvent(kind);
    }
  }

  #start(metadata: JsonObject): StreamStart {
    const encoding = stringOf(metadata, 'encoding', 'audioMetadata.encoding');
    const rate = field(metadata, 'sampleRate');
    if (typeof rate !== 'number') throw malformed('audioMetadata.sampleRate');
    if (field(metadata, 'channels') !== 1) throw malformed('audioMetadata.channels', 'not 1');
    const wire = wireFormat(encoding === 'PCM' ? 'l16' : null, rate, 'le', encoding);
    const readers = new LegReaders(wire);
    this.#readers = readers;
    this.#writer = new PcmWriter(readers.format, wire);
    this.#reply = new ReplyReader(wire, readers.format);
    const params: Record<string, string> = {};
    const subscription = optionalString(metadata, 'subscriptionId', 'audioMetadata.subscriptionId');
    if (subscription !== undefined) params.subscriptionId = subscription;
    return {
      providerCallId: headerValue(this.upgrade.headers, AZURE_CALL_HEADER),
      streamId: subscription,
      params,
      format: readers.format,
      // Unmixed audio may carry either participant: both legs are declared.
      legs: ['caller', 'agent'],
    };
  }

  #audio(audio: JsonObject): ProviderEvent {
    const readers = this.#readers;
    if (readers === undefined) throw beforeStart('AudioData');
    const at = Date.parse(stringOf(audio, 'timestamp', 'audioData.timestamp'));
    if (Number.isNaN(at)) throw malformed('audioData.timestamp');
    const leg = this.#legOf(field(audio, 'participantRawID'));
    const data = stringOf(audio, 'data', 'audioData.data');
    if (leg === null) return NOTHING;
    this.#firstMs ??= at;
    return readers.read(leg, this.#decoder.decode(data, 2, 'audioData.data'), Math.max(0, at - this.#firstMs));
  }

  /** The leg a participant's audio records to; null for a third participant and beyond. */
  #legOf(participant: unknown): Leg | null {
    if (typeof participant !== 'string' || participant === '') return 'caller'; // mixed audio
    const known = this.#legs.get(participant);
    if (known !== undefined) return known;
    const taken = new Set(this.#legs.values());
    const named = this.upgrade.query.caller;
    const preferred: Leg = (named !== undefined ? participant === named : participant.startsWith('4:'))
      ? 'caller'
      : 'agent';
    const other: Leg = preferred === 'caller' ? 'agent' : 'caller';
    // A second participant of the same kind takes the other leg, unless the caller was named.
    let leg: Leg | null = null;
    if (!taken.has(preferred)) leg = preferred;
    else if (!taken.has(other) && named === undefined) leg = other;
    // Bounded: one entry per participant, and a call has few.
    if (this.#legs.size < 64) this.#legs.set(participant, leg);
    return leg;
  }

  flush(): ProviderEvent[] {
    return this.#readers?.flush() ?? [];
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    const reply = this.#reply;
    if (reply === undefined) throw beforeStart('runtime message');
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(data);
    const kind = stringOf(message, 'kind', 'kind');
    switch (kind) {
      case 'AudioData':
        return {
          type: 'media',
          payload: reply.audio(
            Buffer.from(stringOf(objectOf(message, 'audioData'), 'data', 'AudioData.Data'), 'base64'),
          ),
        };
      case 'StopAudio':
        reply.clear();
        return { type: 'clear' };
      default:
        throw unknownEvent(kind);
    }
  }

  mediaMessage(payload: Buffer): WireMessage {
    if (this.#writer === undefined) throw beforeStart('send');
    return textMessage({
      Kind: 'AudioData',
      AudioData: { Data: this.#writer.write(payload).toString('base64') },
      StopAudio: null,
    });
  }

  /** ACS confirms no playback position. */
  markMessage(): null {
    return null;
  }

  clearMessage(): WireMessage {
    return textMessage({ Kind: 'StopAudio', AudioData: null, StopAudio: {} });
  }

  /** `AudioMetadata` carries no credential of callrec's (the token is in the transport URL): as it came. */
  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    return textMessage(parseJsonObject(raw));
  }
}

/** Azure Communication Services media streaming (Call Automation `MediaStreamingOptions`, transport WebSocket). */
export const azure: AdapterFactory = (upgrade) => new AzureAdapter(upgrade);
