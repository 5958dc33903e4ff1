/**
 * The provider's side of a two-way stream, as `callrec replay` imitates it: audio callrec sends
 * back is played in order on the stream's clock, and each mark is confirmed once the audio
 * queued before it has played (Twilio, Telnyx and Exotel echo `mark`, Vonage answers a `notify`
 * with `websocket:notify`, Plivo a `checkpoint` with `playedStream`; Bandwidth has no marks);
 * `clear` (Plivo `clearAudio`) empties the queue and confirms the marks still waiting at once,
 * as Twilio does. Time is the stream's (the fixture's send offsets), so `--speed max` plays a
 * prompt as fast as it streams the call.
 */
import { CallrecError } from '../errors.js';
import type { Fixture } from './fixture.js';
import type { Provider } from '../protocols/types.js';

/** Wire bytes per millisecond of audio in the fixture's format. */
function bytesPerMs(fixture: Fixture): number {
  const { codec, sampleRate, wireRate } = fixture.meta;
  return ((codec === 'l16' ? 2 : 1) * (wireRate ?? sampleRate)) / 1000;
}

/** The ids a provider stamps on its own messages, read from the fixture's start message. */
function streamIds(fixture: Fixture): Record<string, unknown> {
  for (const m of fixture.messages) {
    if (m.binary) continue;
    const message = JSON.parse(m.data as string) as Record<string, unknown>;
    if (message.event === 'start' || message.eventType === 'start') return message;
    if (message.event === 'websocket:connected') return {};
  }
  return {};
}

export class ProviderPlayback {
  readonly #provider: Provider;
  readonly #bytesPerMs: number;
  readonly #ids: Record<string, unknown>;
  /** Stream time at which the audio queued so far ends. */
  #playedUntil = 0;
  /** Marks waiting for the audio before them, in order. */
  #marks: Array<{ name: string; atMs: number }> = [];
  #sequence = 1000;
  /** Stream time at which the first mark was confirmed (callrec's consent prompt has then played). */
  firstMarkAtMs: number | null = null;

  constructor(fixture: Fixture) {
    this.#provider = fixture.meta.provider;
    this.#bytesPerMs = bytesPerMs(fixture);
    this.#ids = streamIds(fixture);
  }

  /** A message callrec sent at stream time `nowMs`. Messages the provider would refuse are ignored here. */
  receive(data: Buffer, binary: boolean, nowMs: number): void {
    if (binary) return this.#play(data.length, nowMs); // Vonage, jambonz, Asterisk audio frames
    const text = data.toString();
    // Asterisk's plain-text commands.
    const asteriskMark = /^MARK_MEDIA correlation_id:(\S*)/.exec(text);
    if (asteriskMark) return void this.#marks.push({ name: asteriskMark[1], atMs: Math.max(nowMs, this.#playedUntil) });
    if (text === 'FLUSH_MEDIA') return this.#clear(nowMs);
    // biome-ignore lint/suspicious/noExplicitAny: an untyped provider message whose fields are tested one by one below.
    let message: Record<string, any>;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return; // `null` or a number: nothing to play, and `.event` would throw
    const kind: unknown =
      message.event ?? message.action ?? message.eventType ?? message.type ?? message.Kind ?? message.command;
    const markName: unknown = message.mark?.name ?? message.data?.name ?? message.correlation_id;
    if ((kind === 'media' || kind === 'playAudio') && typeof message.media?.payload === 'string') {
      this.#play(Buffer.byteLength(message.media.payload, 'base64'), nowMs);
    } else if (kind === 'AudioData' && typeof message.AudioData?.Data === 'string') {
      this.#play(Buffer.byteLength(message.AudioData.Data, 'base64'), nowMs); // Azure
    } else if (kind === 'streamAudio' && typeof message.data?.audioData === 'string') {
      this.#play(Buffer.byteLength(message.data.audioData, 'base64'), nowMs); // FreeSWITCH
    } else if ((kind === 'mark' || kind === 'MARK_MEDIA') && typeof markName === 'string') {
      this.#marks.push({ name: markName, atMs: Math.max(nowMs, this.#playedUntil) });
    } else if (kind === 'checkpoint' && typeof message.name === 'string') {
      this.#marks.push({ name: message.name, atMs: Math.max(nowMs, this.#playedUntil) }); // Plivo
    } else if (kind === 'notify') {
      this.#marks.push({
        name: typeof message.payload?.name === 'string' ? message.payload.name : '',
        atMs: Math.max(nowMs, this.#playedUntil),
      });
    } else if (
      kind === 'clear' ||
      kind === 'clearAudio' ||
      kind === 'killAudio' ||
      kind === 'FLUSH_MEDIA' ||
      kind === 'StopAudio'
    ) {
      this.#clear(nowMs);
    }
  }

  #clear(nowMs: number): void {
    this.#playedUntil = nowMs;
    for (const mark of this.#marks) mark.atMs = nowMs;
  }

  /** The provider's messages due by stream time `nowMs` (mark confirmations), in order. */
  due(nowMs: number): string[] {
    const out: string[] = [];
    while (this.#marks.length > 0 && this.#marks[0].atMs <= nowMs) {
      const mark = this.#marks.shift()!;
      this.firstMarkAtMs ??= mark.atMs;
      out.push(this.#markEcho(mark.name));
    }
    return out;
  }

  /** The provider's message for a key the caller pressed; null where the platform sends none (FreeSWITCH). */
  dtmf(digit: string): string | null {
    const sequence = String(this.#sequence++);
    switch (this.#provider) {
      case 'twilio':
      case 'signalwire':
        return JSON.stringify({
          event: 'dtmf',
          streamSid: this.#ids.streamSid,
          sequenceNumber: sequence,
          dtmf: { track: 'inbound_track', digit },
        });
      case 'telnyx':
        return JSON.stringify({
          event: 'dtmf',
          stream_id: this.#ids.stream_id,
          sequence_number: sequence,
          dtmf: { digit },
        });
      case 'vonage':
        return JSON.stringify({ event: 'websocket:dtmf', digit, duration: 100 });
      case 'plivo':
        return JSON.stringify({
          event: 'dtmf',
          sequenceNumber: Number(sequence),
          streamId: this.#plivoStream(),
          dtmf: { digit },
        });
      case 'exotel':
        return JSON.stringify({
          event: 'dtmf',
          sequence_number: Number(sequence),
          stream_sid: this.#ids.stream_sid,
          dtmf: { duration: '100', digit },
        });
      case 'bandwidth':
        // Bandwidth posts keys to a `<Gather>` webhook, not over the stream (and confirms no prompt to press after).
        throw new Error('Bandwidth sends no DTMF over the stream');
      case 'jambonz':
        return JSON.stringify({ event: 'dtmf', dtmf: digit, duration: '100' });
      case 'asterisk':
        return `DTMF_END digit:${digit}`;
      case 'azure':
        return JSON.stringify({ kind: 'DtmfData', dtmfData: { data: digit } });
      case 'freeswitch':
        return null;
      case 'genesys':
        throw noPlayback();
    }
  }

  #play(bytes: number, nowMs: number): void {
    this.#playedUntil = Math.max(nowMs, this.#playedUntil) + bytes / this.#bytesPerMs;
  }

  #markEcho(name: string): string {
    const sequence = String(this.#sequence++);
    switch (this.#provider) {
      case 'twilio':
      case 'signalwire':
        return JSON.stringify({
          event: 'mark',
          sequenceNumber: sequence,
          streamSid: this.#ids.streamSid,
          mark: { name },
        });
      case 'telnyx':
        return JSON.stringify({
          event: 'mark',
          sequence_number: sequence,
          stream_id: this.#ids.stream_id,
          mark: { name },
        });
      case 'vonage':
        return JSON.stringify({ event: 'websocket:notify', payload: { name } });
      case 'plivo':
        return JSON.stringify({
          event: 'playedStream',
          sequenceNumber: Number(sequence),
          streamId: this.#plivoStream(),
          name,
        });
      case 'exotel':
        return JSON.stringify({
          event: 'mark',
          sequence_number: Number(sequence),
          stream_sid: this.#ids.stream_sid,
          mark: { name },
        });
      case 'bandwidth':
        throw new Error('Bandwidth confirms no marks');
      case 'jambonz':
        return JSON.stringify({ type: 'mark', data: { name, event: 'playout' } });
      case 'asterisk':
        return `MEDIA_MARK_PROCESSED correlation_id:${name}`;
      // No marks on these platforms: callrec never asks for one.
      case 'freeswitch':
      case 'azure':
        return '';
      case 'genesys':
        throw noPlayback();
    }
  }

  #plivoStream(): unknown {
    return (this.#ids.start as Record<string, unknown> | undefined)?.streamId;
  }
}

/** AudioHook Monitor plays nothing, so it has no marks to confirm or keys to press. */
function noPlayback(): CallrecError {
  return new CallrecError('ERR_UNEXPECTED_MESSAGE', 'AudioHook Monitor plays no audio: no marks, no DTMF');
}
