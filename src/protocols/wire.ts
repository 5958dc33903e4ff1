/**
 * Helpers the three provider adapters share: strict field access on parsed JSON, base64 audio
 * decoding into reused scratch memory, codec names → `MediaFormat`, param flattening, size limit.
 */
import { isUtf8 } from 'node:buffer';
import { CallrecError } from '../errors.js';
import { bytesPerSample } from '../../media/codec.js';
import type { Leg } from '../../media/types.js';
import { base64Length } from './media-scan.js';
import { unsupportedCodec, wireFormat, type WireFormat } from './pcm.js';
import type { ProviderEvent, WireMessage } from './types.js';

export type JsonObject = Record<string, unknown>;

export function malformed(field: string, what = 'missing or not valid'): CallrecError {
  return new CallrecError('ERR_MALFORMED_MESSAGE', `${field}: ${what}`);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a text frame that must hold one JSON object. The frame's UTF-8 is checked here, not by
 * the socket (`skipUTF8Validation`): media frames read by `MediaMessageScan` are ASCII by its
 * rules, so only the messages that come this way need it.
 */
export function parseJsonObject(data: Buffer): JsonObject {
  if (!isUtf8(data)) throw new CallrecError('ERR_MALFORMED_MESSAGE', 'message is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw new CallrecError('ERR_MALFORMED_MESSAGE', 'message is not JSON');
  }
  if (!isObject(value)) throw new CallrecError('ERR_MALFORMED_MESSAGE', 'message is not a JSON object');
  return value;
}

/** `o[name]` as an object; `path` names it in the error (e.g. `start.mediaFormat`). */
export function objectField(o: JsonObject, name: string, path: string): JsonObject {
  const value = o[name];
  if (!isObject(value)) throw malformed(path);
  return value;
}

export function stringField(o: JsonObject, name: string, path: string): string {
  const value = o[name];
  if (typeof value !== 'string') throw malformed(path);
  return value;
}

export function optionalString(o: JsonObject, name: string, path: string): string | undefined {
  const value = o[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw malformed(path);
  return value;
}

/**
 * A non-negative integer that providers send as a decimal string (Twilio, Telnyx) or, in some
 * Telnyx messages, as a number. Undefined when absent.
 */
export function optionalCount(o: JsonObject, name: string, path: string): number | undefined {
  const value = o[name];
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && value !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw malformed(path);
  return n;
}

/** The `event` field every provider text message carries. */
export function eventName(o: JsonObject, field = 'event'): string {
  return stringField(o, field, field);
}

export function unknownEvent(name: string): CallrecError {
  return new CallrecError('ERR_UNKNOWN_EVENT', `unknown event: ${name.slice(0, 40)}`);
}

export function beforeStart(what: string): CallrecError {
  return new CallrecError('ERR_UNEXPECTED_MESSAGE', `${what} before start`);
}

/**
 * The largest message a provider sends: a 20 ms frame is well under 2 KiB of JSON, a start
 * with its parameters a few KiB. Anything larger is refused before it is read.
 */
export const MAX_PROVIDER_MESSAGE_BYTES = 64 * 1024;

export function checkMessageSize(data: Buffer): void {
  if (data.length > MAX_PROVIDER_MESSAGE_BYTES) {
    throw new CallrecError(
      'ERR_MESSAGE_TOO_LARGE',
      `${data.length}-byte message; the limit is ${MAX_PROVIDER_MESSAGE_BYTES}`,
    );
  }
}

/** A provider message with nothing in it for the recording (Vonage `websocket:cleared`, Telnyx `error`). */
export const NOTHING: ProviderEvent = Object.freeze({ type: 'other' });

/**
 * The byte count a base64 string of this length decodes to. Node's decoder silently skips
 * characters outside the alphabet, so a payload is valid exactly when it decodes to this many
 * bytes: checked after decoding, which costs nothing, rather than with a per-frame regex.
 */
function base64Bytes(b64: string, field: string): number {
  if (b64.length % 4 !== 0) throw badBase64(field);
  let padding = 0;
  if (b64.endsWith('==')) padding = 2;
  else if (b64.endsWith('=')) padding = 1;
  return (b64.length / 4) * 3 - padding;
}

function badBase64(field: string): CallrecError {
  return new CallrecError('ERR_BAD_PAYLOAD', `${field}: not valid base64`);
}

function checkWholeSamples(bytes: number, sampleBytes: number, field: string): void {
  if (bytes % sampleBytes !== 0) {
    throw new CallrecError('ERR_BAD_PAYLOAD', `${field}: not a whole number of samples`);
  }
}

/**
 * Decodes base64 audio into one buffer owned by the adapter, so the per-frame path allocates
 * nothing (frames of the size seen last reuse its view); each result is valid until the next decode.
 */
export class ScratchDecoder {
  // allocUnsafeSlow: its own memory, not a slice of the shared pool, so growth is observable and rare.
  private scratch = Buffer.allocUnsafeSlow(1024);
  private view = this.scratch.subarray(0, 0);

  /** Decodes base64 text (the general path, after `JSON.parse`). */
  decode(b64: string, sampleBytes: number, field: string): Buffer {
    const bytes = base64Bytes(b64, field);
    checkWholeSamples(bytes, sampleBytes, field);
    const out = this.room(bytes);
    if (out.write(b64, 0, 'base64') !== bytes) throw badBase64(field);
    return out;
  }

  /**
   * Decodes the base64 text at `message[start, end)` (the fast path: see `MediaMessageScan`);
   * null when it is not valid base64 of whole samples, for the general path to report.
   */
  decodeBytes(message: Buffer, start: number, end: number, sampleBytes: number): Buffer | null {
    const bytes = base64Length(message, start, end);
    if (bytes < 0 || bytes % sampleBytes !== 0) return null;
    const out = this.room(bytes);
    // Node's decoder (simdutf) on the text as a one-byte string, valid under `decode`'s rule: it
    // made exactly `bytes` bytes. A table loop over the bytes, which needs no string, was a second
    // reading of base64 to keep in step with Node's, and no faster: 265 against 205 ns a 20 ms
    // frame, the string's allocation included (microbench, quiet machine).
    return out.write(message.toString('latin1', start, end), 0, bytes, 'base64') === bytes ? out : null;
  }

  /** A view of `bytes` bytes of scratch memory. */
  private room(bytes: number): Buffer {
    if (bytes === this.view.length) return this.view;
    if (bytes > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(Math.max(bytes, this.scratch.length * 2));
    this.view = this.scratch.subarray(0, bytes);
    return this.view;
  }
}

/**
 * Maps a provider's codec name and rate to the format on its wire; `names` lists the provider's
 * spelling of μ-law, A-law and L16 (or its several spellings of L16) and the rates it sends L16
 * at (8 and 16 kHz unless it documents more). Above 16 kHz the adapter records through
 * `LegReaders` (`pcm.ts`), resampled to 16 kHz as the binary platforms' audio is.
 */
export function mediaFormat(
  encoding: string,
  sampleRate: number,
  names: { pcmu?: string; pcma?: string; l16: string | readonly string[]; l16Rates?: readonly number[] },
  l16ByteOrder: 'be' | 'le',
): WireFormat {
  if (encoding === names.pcmu || encoding === names.pcma)
    return wireFormat(encoding === names.pcmu ? 'pcmu' : 'pcma', sampleRate, l16ByteOrder, encoding);
  const l16 = typeof names.l16 === 'string' ? encoding === names.l16 : names.l16.includes(encoding);
  if (l16 && (names.l16Rates ?? L16_RATES).includes(sampleRate))
    return wireFormat('l16', sampleRate, l16ByteOrder, encoding);
  throw unsupportedCodec(encoding, sampleRate);
}

/** The L16 rates a JSON platform sends unless it documents more. */
const L16_RATES: readonly number[] = [8000, 16000];

/** Media `track` → leg: `inbound` is the caller, `outbound` the agent. */
export function legOfTrack(track: string, path: string): Leg {
  if (track === 'inbound') return 'caller';
  if (track === 'outbound') return 'agent';
  throw malformed(path, `unknown track ${track.slice(0, 20)}`);
}

/** A start's `tracks` list as legs; absent means the inbound track alone. */
export function legsOfTracks(tracks: unknown, path: string): Leg[] {
  if (tracks === undefined) return ['caller'];
  if (!Array.isArray(tracks) || tracks.length === 0) throw malformed(path);
  return tracks.map((track) => {
    if (typeof track !== 'string') throw malformed(path);
    return legOfTrack(track, path);
  });
}

/**
 * A frame's position in ms: the provider's `timestamp` when sent, else derived from the 1-based
 * `chunk` number times this frame's duration.
 */
export function frameTimestampMs(
  timestamp: number | undefined,
  chunk: number | undefined,
  payloadBytes: number,
  wire: WireFormat,
  path: string,
): number {
  if (timestamp !== undefined) return timestamp;
  if (chunk === undefined || chunk < 1) throw malformed(`${path}.timestamp`);
  const frameMs = (payloadBytes / bytesPerSample(wire) / wire.rate) * 1000;
  return (chunk - 1) * frameMs;
}

/** Copies the string-valued (and number/boolean, stringified) entries of `source` into `into`. */
export function flattenParams(source: unknown, into: Record<string, string>): void {
  if (!isObject(source)) return;
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === 'string') into[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') into[key] = String(value);
  }
}

export function textMessage(message: unknown): WireMessage {
  return { data: JSON.stringify(message), binary: false };
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
