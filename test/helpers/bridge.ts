import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { bytesPerSample, decoderFor, encoderFor } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import type { Provider } from '../../src/protocols/types.js';
import type { Fixture } from '../../src/replay/fixture.js';

/** A WebSocket message as sent or received. */
export interface Message {
  data: Buffer;
  binary: boolean;
}

/** The stream format a fixture's provider uses on the wire. */
export function formatOf(fixture: Fixture): MediaFormat {
  const { codec, sampleRate, provider } = fixture.meta;
  return { codec, sampleRate, byteOrder: provider === 'telnyx' ? 'be' : 'le' } as MediaFormat;
}

/** The fixture's start message (Vonage: `websocket:connected`), parsed. */
function startOf(fixture: Fixture): Record<string, any> {
  return JSON.parse(fixture.messages.find((m) => !m.binary && /"start"|websocket:connected/.test(m.data as string))!.data as string);
}

/** The provider's "your audio up to this mark has played" message, in its own protocol. */
export function markEcho(fixture: Fixture, name: string): string {
  switch (fixture.meta.provider) {
    case 'twilio':
      return JSON.stringify({ event: 'mark', sequenceNumber: '900', streamSid: startOf(fixture).streamSid, mark: { name } });
    case 'telnyx':
      return JSON.stringify({ event: 'mark', sequence_number: '900', stream_id: startOf(fixture).stream_id, mark: { name } });
    case 'vonage':
      return JSON.stringify({ event: 'websocket:notify', payload: { name } });
    case 'genesys':
      throw new Error('AudioHook Monitor plays nothing: no marks');
  }
}

/** What one message a provider received from callrec (or a runtime sent it) says, in any provider's protocol. */
export type Said = { type: 'audio'; payload: Buffer } | { type: 'mark'; name: string } | { type: 'other' };

/** Reads a message sent toward the provider (callrec's prompt, or the runtime's replies). */
export function readToProvider(message: Message): Said {
  if (message.binary) return { type: 'audio', payload: message.data }; // Vonage audio frames
  const m = JSON.parse(message.data.toString());
  if (m.event === 'media') return { type: 'audio', payload: Buffer.from(m.media.payload, 'base64') };
  if (m.event === 'mark') return { type: 'mark', name: m.mark.name };
  if (m.action === 'notify') return { type: 'mark', name: m.payload.name };
  return { type: 'other' };
}

/** Caller audio in a message the provider sent (Twilio/Telnyx inbound media, Vonage binary frames); null otherwise. */
export function callerAudio(message: Message): Buffer | null {
  if (message.binary) return message.data;
  const m = JSON.parse(message.data.toString());
  return m.event === 'media' && (m.media.track ?? 'inbound') === 'inbound' ? Buffer.from(m.media.payload, 'base64') : null;
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
    const audio = callerAudio({ data: m.binary ? (m.data as Buffer) : Buffer.from(m.data as string), binary: m.binary });
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
 * (20 ms media messages, sent at once as runtimes do) and a mark.
 */
export class ToneAnsweringRuntime {
  readonly wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  readonly received: Message[] = [];
  readonly sent: Message[] = [];
  /** When the greeting was sent (`performance.now()`), if it was. */
  greetedAt: number | null = null;
  readonly #opts: RuntimeOptions;
  #loud = false;

  static async start(opts: RuntimeOptions): Promise<ToneAnsweringRuntime> {
    const runtime = new ToneAnsweringRuntime(opts);
    await once(runtime.wss, 'listening');
    return runtime;
  }

  private constructor(opts: RuntimeOptions) {
    this.#opts = opts;
    this.wss.on('connection', (ws) => ws.on('message', (data: Buffer, binary: boolean) => this.#onMessage(ws, { data, binary })));
  }

  get url(): string {
    const address = this.wss.address();
    return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  /** The start message the runtime was sent (Vonage: `websocket:connected`). */
  get start(): Record<string, any> {
    return this.received.filter((m) => !m.binary).map((m) => JSON.parse(m.data.toString())).find((m) => m.event === 'start' || m.event === 'websocket:connected')!;
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }

  #onMessage(ws: WebSocket, message: Message): void {
    this.received.push(message);
    if (this.#opts.greetingMs && !message.binary && /"start"|websocket:connected/.test(message.data.toString())) {
      this.#say(ws, tone(this.#opts.format, 2000, this.#opts.greetingMs), 'greeting');
      this.greetedAt = performance.now();
    }
    const audio = callerAudio(message);
    if (!audio) return;
    const loud = isLoud(this.#opts.format, audio);
    if (loud && !this.#loud) this.#say(ws, tone(this.#opts.format, 1500, this.#opts.replyMs), `reply-${this.sent.length}`);
    this.#loud = loud;
  }

  /** Sends `audio` in 20 ms media messages, then a mark, in the provider's protocol. */
  #say(ws: WebSocket, audio: Buffer, mark: string): void {
    const { provider, format } = this.#opts;
    const frameBytes = (bytesPerSample(format) * format.sampleRate * 20) / 1000;
    const streamSid = provider === 'twilio' ? this.start.streamSid : undefined;
    for (let offset = 0; offset < audio.length; offset += frameBytes) {
      const frame = audio.subarray(offset, offset + frameBytes);
      if (provider === 'vonage') this.#send(ws, { data: Buffer.from(frame), binary: true });
      else this.#send(ws, { data: Buffer.from(JSON.stringify({ event: 'media', streamSid, media: { payload: frame.toString('base64') } })), binary: false });
    }
    const markMessage = provider === 'vonage' ? { action: 'notify', payload: { name: mark } } : { event: 'mark', streamSid, mark: { name: mark } };
    this.#send(ws, { data: Buffer.from(JSON.stringify(markMessage)), binary: false });
  }

  #send(ws: WebSocket, message: Message): void {
    this.sent.push(message);
    ws.send(message.data, { binary: message.binary });
  }
}
