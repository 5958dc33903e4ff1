import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { bytesPerSample, decoderFor, encoderFor } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import { adapters } from '../../src/protocols/index.js';
import type { Provider, ProviderAdapter, WireMessage } from '../../src/protocols/types.js';
import type { Fixture } from '../../src/replay/fixture.js';

/** A WebSocket message as sent or received. */
export interface Message {
  data: Buffer;
  binary: boolean;
}

/** The stream format a fixture's provider uses on the wire. */
export function formatOf(fixture: Fixture): MediaFormat {
  const { codec, sampleRate, wireRate, provider } = fixture.meta;
  return { codec, sampleRate: wireRate ?? sampleRate, byteOrder: provider === 'telnyx' ? 'be' : 'le' } as MediaFormat;
}

/** A text message as JSON; null for the plain-text lines Asterisk speaks. */
function json(message: Message): Record<string, any> | null {
  const text = message.data.toString();
  return text.startsWith('{') ? JSON.parse(text) : null;
}

/** Platforms with no marks: a runtime sends none, and their replies are audio only. */
export const NO_MARKS: ReadonlySet<Provider> = new Set(['bandwidth', 'freeswitch', 'azure']);

/** Whether a message is a provider's start (Vonage: `websocket:connected`; Bandwidth: `eventType` start; jambonz and FreeSWITCH: the metadata; Asterisk: MEDIA_START; ACS: AudioMetadata). */
const START = /"start"|websocket:connected|"mixType"|^MEDIA_START|"AudioMetadata"/;

/** The fixture's start message (Vonage: `websocket:connected`), parsed. */
function startOf(fixture: Fixture): Record<string, any> {
  return JSON.parse(fixture.messages.find((m) => !m.binary && START.test(m.data as string))!.data as string);
}

/** The provider's "your audio up to this mark has played" message, in its own protocol. */
export function markEcho(fixture: Fixture, name: string): string {
  switch (fixture.meta.provider) {
    case 'twilio':
    case 'signalwire':
      return JSON.stringify({
        event: 'mark',
        sequenceNumber: '900',
        streamSid: startOf(fixture).streamSid,
        mark: { name },
      });
    case 'plivo':
      return JSON.stringify({
        event: 'playedStream',
        sequenceNumber: 900,
        streamId: startOf(fixture).start.streamId,
        name,
      });
    case 'exotel':
      return JSON.stringify({
        event: 'mark',
        sequence_number: 900,
        stream_sid: startOf(fixture).stream_sid,
        mark: { name },
      });
    case 'bandwidth':
      throw new Error('Bandwidth has no marks');
    case 'telnyx':
      return JSON.stringify({
        event: 'mark',
        sequence_number: '900',
        stream_id: startOf(fixture).stream_id,
        mark: { name },
      });
    case 'vonage':
      return JSON.stringify({ event: 'websocket:notify', payload: { name } });
    case 'jambonz':
      return JSON.stringify({ type: 'mark', data: { name, event: 'playout' } });
    case 'asterisk':
      return `MEDIA_MARK_PROCESSED correlation_id:${name}`;
    default:
      throw new Error(`${fixture.meta.provider} has no marks`);
  }
}

/** What one message a provider received from callrec (or a runtime sent it) says, in any provider's protocol. */
export type Said = { type: 'audio'; payload: Buffer } | { type: 'mark'; name: string } | { type: 'other' };

/** Reads a message sent toward the provider (callrec's prompt, or the runtime's replies). */
export function readToProvider(message: Message): Said {
  if (message.binary) return { type: 'audio', payload: message.data }; // Vonage, jambonz, Asterisk audio frames
  const asteriskMark = /^MARK_MEDIA correlation_id:(\S*)/.exec(message.data.toString());
  if (asteriskMark) return { type: 'mark', name: asteriskMark[1] };
  const m = json(message);
  if (m === null) return { type: 'other' };
  // Plivo and Bandwidth play `playAudio`; Plivo's mark is `checkpoint`; FreeSWITCH plays `streamAudio`.
  if (m.event === 'media' || m.event === 'playAudio' || m.eventType === 'playAudio')
    return { type: 'audio', payload: Buffer.from(m.media.payload, 'base64') };
  if (m.type === 'streamAudio') return { type: 'audio', payload: Buffer.from(m.data.audioData, 'base64') };
  if (m.event === 'mark') return { type: 'mark', name: m.mark.name };
  if (m.event === 'checkpoint') return { type: 'mark', name: m.name };
  if (m.type === 'mark') return { type: 'mark', name: m.data.name };
  if (m.action === 'notify') return { type: 'mark', name: m.payload.name };
  return { type: 'other' };
}

/** The mark a provider says has played, in any provider's protocol; null for anything else. */
export function playedMark(message: Message): string | null {
  if (message.binary) return null;
  const asterisk = /^MEDIA_MARK_PROCESSED correlation_id:(\S*)/.exec(message.data.toString());
  if (asterisk) return asterisk[1];
  const m = json(message);
  if (m?.event === 'mark') return m.mark.name;
  if (m?.event === 'websocket:notify') return m.payload.name;
  if (m?.event === 'playedStream') return m.name; // Plivo
  if (m?.type === 'mark') return m.data.name;
  return null;
}

/** Caller audio in a message the provider sent (inbound media of any provider, binary frames); null otherwise. */
export function callerAudio(message: Message): Buffer | null {
  if (message.binary) return message.data;
  const m = json(message);
  // Bandwidth puts track and payload at the top; Exotel's media names no track (the caller's only).
  if (m?.eventType === 'media') return m.track === 'inbound' ? Buffer.from(m.payload, 'base64') : null;
  return m?.event === 'media' && (m.media.track ?? 'inbound') === 'inbound'
    ? Buffer.from(m.media.payload, 'base64')
    : null;
}

/** Whether a frame of caller audio holds a tone (what `ToneAnsweringRuntime` answers). */
function isLoud(format: MediaFormat, audio: Buffer): boolean {
  const pcm = new Int16Array(audio.length);
  const n = decoderFor(format)(audio, pcm);
  return pcm.subarray(0, n).some((s) => Math.abs(s) > 1000);
}

/** Send offsets (ms after the first message) of the fixture's messages that begin a loud stretch of caller audio: each one the runtime answers. */
export function toneStartOffsets(fixture: Fixture): number[] {
  const format = formatOf(fixture);
  const firstT = fixture.messages[0]?.t ?? 0;
  const offsets: number[] = [];
  let loud = false;
  for (const m of fixture.messages) {
    const audio = callerAudio({
      data: m.binary ? (m.data as Buffer) : Buffer.from(m.data as string),
      binary: m.binary,
    });
    if (!audio) continue;
    const now = isLoud(format, audio);
    if (now && !loud) offsets.push(m.t - firstT);
    loud = now;
  }
  return offsets;
}

/** A sine tone, `ms` long at `hz`, in `format`'s wire encoding. */
export function tone(format: MediaFormat, hz: number, ms: number): Buffer {
  const samples = (ms * format.sampleRate) / 1000;
  const pcm = new Int16Array(samples);
  for (let i = 0; i < samples; i++) pcm[i] = Math.round(12000 * Math.sin((2 * Math.PI * hz * i) / format.sampleRate));
  return encoderFor(format)(pcm);
}

export interface RuntimeOptions {
  provider: Provider;
  format: MediaFormat;
  /** How long each answer lasts (1500 Hz), ms. */
  replyMs: number;
  /** Greets (a 2000 Hz tone of this length, then a mark) as soon as the stream starts, without waiting for the caller. */
  greetingMs?: number;
}

/**
 * A voice-agent runtime speaking the provider's own protocol, as a customer would run it:
 * whenever the caller's audio turns from silence to tone it answers with a 1500 Hz burst
 * (20 ms media messages, sent at once as runtimes do) and a mark where the provider has marks.
 * Its messages are built by the provider's adapter, whose builders the contract suite checks
 * against each provider's documented messages.
 */
export class ToneAnsweringRuntime {
  readonly wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  readonly received: Message[] = [];
  readonly sent: Message[] = [];
  /** When the greeting was sent (`performance.now()`), if it was. */
  greetedAt: number | null = null;
  readonly #opts: RuntimeOptions;
  /** Reads the start it is sent, then writes its replies in the provider's protocol. */
  readonly #protocol: ProviderAdapter;
  #started = false;
  /** The stream's format as the provider's start gives it (callrec's recording rate): what the adapter's `mediaMessage` takes. */
  #replyFormat: MediaFormat | null = null;
  #loud = false;

  static async start(opts: RuntimeOptions): Promise<ToneAnsweringRuntime> {
    const runtime = new ToneAnsweringRuntime(opts);
    await once(runtime.wss, 'listening');
    return runtime;
  }

  private constructor(opts: RuntimeOptions) {
    this.#opts = opts;
    this.#protocol = adapters[opts.provider]({ headers: {}, query: {} });
    this.wss.on('connection', (ws) =>
      ws.on('message', (data: Buffer, binary: boolean) => this.#onMessage(ws, { data, binary })),
    );
  }

  get url(): string {
    const address = this.wss.address();
    return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  /** The start message the runtime was sent (Vonage: `websocket:connected`), as text. */
  get startText(): string {
    return this.received.find((m) => !m.binary && START.test(m.data.toString()))!.data.toString();
  }

  /** The start message the runtime was sent, parsed (JSON starts only). */
  get start(): Record<string, any> {
    return JSON.parse(this.startText);
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }

  #onMessage(ws: WebSocket, message: Message): void {
    this.received.push(message);
    if (!this.#started && !message.binary && START.test(message.data.toString())) {
      const event = this.#protocol.parseProviderMessage(message.data, false);
      this.#started = event.type === 'start';
      if (event.type === 'start') this.#replyFormat = event.start.format;
      if (this.#opts.greetingMs) {
        this.#say(ws, tone(this.#format, 2000, this.#opts.greetingMs), 'greeting');
        this.greetedAt = performance.now();
      }
    }
    const audio = callerAudio(message);
    if (!audio) return;
    const loud = isLoud(this.#opts.format, audio);
    if (loud && !this.#loud) this.#say(ws, tone(this.#format, 1500, this.#opts.replyMs), `reply-${this.sent.length}`);
    this.#loud = loud;
  }

  /** Sends `audio` in 20 ms media messages, then a mark where the provider has them, in the provider's protocol. */
  /** Replies are made at the stream's format; the adapter converts them to the wire's rate where it differs (L16 24/48 kHz). */
  get #format(): MediaFormat {
    return this.#replyFormat ?? this.#opts.format;
  }

  #say(ws: WebSocket, audio: Buffer, mark: string): void {
    const format = this.#format;
    const frameBytes = (bytesPerSample(format) * format.sampleRate * 20) / 1000;
    const wire = (m: WireMessage): Message => ({ data: Buffer.from(m.data), binary: m.binary });
    for (let offset = 0; offset < audio.length; offset += frameBytes)
      this.#send(ws, wire(this.#protocol.mediaMessage(audio.subarray(offset, offset + frameBytes))));
    const markMessage = this.#protocol.markMessage(mark);
    if (markMessage) this.#send(ws, wire(markMessage));
  }

  #send(ws: WebSocket, message: Message): void {
    this.sent.push(message);
    ws.send(message.data, { binary: message.binary });
  }
}
