/**
 * The fast path for the message a media stream sends fifty times a second per track: a `media`
 * message in the shape Twilio defined and Telnyx, Plivo and Exotel adopted, or in Bandwidth's flat
 * one (`eventType`, the media fields at the top level). `MediaMessageScan.scan` reads the raw
 * bytes once, checks they are one well-formed JSON object, and notes where the fields callrec
 * needs sit: no UTF-8 decode, no `JSON.parse`, no objects or strings made.
 *
 * Hand-written rather than taken from a library: `JSON.parse` with the string decode before it
 * was the largest cost of the frame path (bench: about a seventh of callrec's fork-mode CPU), and
 * no JSON library reads fields out of a byte buffer without building the whole document. It
 * accepts only what it fully understands. Another event, an escape in a key or in a field it
 * reads, a byte outside printable ASCII, a repeated key, a number that is not a plain integer:
 * `scan` returns false and the caller parses the message the ordinary way, so every error and
 * edge case stays `JSON.parse`'s. Whatever it accepts is ASCII, so valid UTF-8, and valid JSON
 * that `JSON.parse` reads the same way (test/protocols/media-scan.test.ts checks both against
 * each other on mutated messages); that is why the media socket skips ws's UTF-8 check.
 */
import type { Leg } from '../../media/types.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const FAIL = -1;
/** Deeper values are left to `JSON.parse` (which has its own limit), so recursion here stays shallow. */
const MAX_DEPTH = 32;
/** Longest integer read here: 15 digits stay exact in a double. */
const MAX_DIGITS = 15;

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const KEY_EVENT = ascii('event');
const KEY_EVENT_TYPE = ascii('eventType');
const KEY_MEDIA = ascii('media');
const KEY_TRACK = ascii('track');
const KEY_PAYLOAD = ascii('payload');
const KEY_TIMESTAMP = ascii('timestamp');
const KEY_CHUNK = ascii('chunk');
const VALUE_MEDIA = KEY_MEDIA;
const VALUE_INBOUND = ascii('inbound');
const VALUE_OUTBOUND = ascii('outbound');
// biome-ignore lint/complexity/useSimpleNumberKeys: the keys are the literals' first bytes, `t`, `f` and `n`.
const LITERALS: Record<number, Uint8Array> = { 0x74: ascii('true'), 0x66: ascii('false'), 0x6e: ascii('null') };

/** JSON's four whitespace bytes. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function skipSpace(b: Uint8Array, i: number): number {
  while (i < b.length && isSpace(b[i])) i++;
  return i;
}

/** `b[start, end)` equals `text`. */
function equals(b: Uint8Array, start: number, end: number, text: Uint8Array): boolean {
  if (end - start !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (b[start + k] !== text[k]) return false;
  return true;
}

/** Past the string that starts at the quote at `i`; FAIL if it is not a valid JSON string of printable ASCII. */
function skipString(b: Uint8Array, i: number): number {
  for (i++; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c < 0x20 || c > 0x7e) return FAIL;
    if (c === BACKSLASH) {
      const e = b[++i];
      if (e === 0x75) {
        if (!(isHex(b[i + 1]) && isHex(b[i + 2]) && isHex(b[i + 3]) && isHex(b[i + 4]))) return FAIL;
        i += 4;
      } else if (
        !(
          e === QUOTE ||
          e === BACKSLASH ||
          e === 0x2f ||
          e === 0x62 ||
          e === 0x66 ||
          e === 0x6e ||
          e === 0x72 ||
          e === 0x74
        )
      ) {
        return FAIL;
      }
    }
  }
  return FAIL;
}

/** Past the number at `i` (RFC 8259 grammar); FAIL if there is none. */
function skipNumber(b: Uint8Array, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else if (isDigit(b[i])) while (isDigit(b[i])) i++;
  else return FAIL;
  if (b[i] === DOT) {
    if (!isDigit(b[++i])) return FAIL;
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === PLUS || b[i] === MINUS) i++;
    if (!isDigit(b[i])) return FAIL;
    while (isDigit(b[i])) i++;
  }
  return i;
}

/** Past the comma-separated items of an object or array opened at `i`; `item` reads one. */
function skipItems(b: Uint8Array, i: number, close: number, item: (b: Uint8Array, i: number) => number): number {
  i = skipSpace(b, i + 1);
  if (b[i] === close) return i + 1;
  for (;;) {
    i = item(b, i);
    if (i === FAIL) return FAIL;
    i = skipSpace(b, i);
    if (b[i] === close) return i + 1;
    if (b[i] !== COMMA) return FAIL;
    i = skipSpace(b, i + 1);
  }
}

/** Past the JSON value at `i` (no leading space); FAIL if it is not one. */
function skipValue(b: Uint8Array, i: number, depth: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i);
  if (c === MINUS || isDigit(c)) return skipNumber(b, i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    if (depth >= MAX_DEPTH) return FAIL;
    if (c === OPEN_ARRAY) return skipItems(b, i, CLOSE_ARRAY, (b, at) => skipValue(b, at, depth + 1));
    return skipItems(b, i, CLOSE_OBJECT, (b, at) => {
      if (b[at] !== QUOTE) return FAIL;
      at = skipSpace(b, skipString(b, at));
      if (b[at] !== COLON) return FAIL;
      return skipValue(b, skipSpace(b, at + 1), depth + 1);
    });
  }
  const literal = LITERALS[c];
  if (literal !== undefined && equals(b, i, i + literal.length, literal)) return i + literal.length;
  return FAIL;
}

/**
 * Where a plain string's closing quote is: the string that opens at the quote before `i` holds
 * only printable ASCII, no escape. FAIL otherwise (the ordinary parser decides). ASCII only, so
 * that a message the scan accepts is valid UTF-8 by construction (see `scan`).
 */
function plainStringEnd(b: Uint8Array, i: number): number {
  for (; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) return i;
    if (c < 0x20 || c === BACKSLASH || c > 0x7e) return FAIL;
  }
  return FAIL;
}

/**
 * Where a media message keeps its fields: `nested` `{"event":"media","media":{…}}` (Twilio's),
 * or `flat` `{"eventType":"media","track":…,"payload":…}` (Bandwidth's).
 */
export type MediaLayout = 'nested' | 'flat';

/** Where the fields of a media message sit; filled in by `scan`, valid until the next `scan`. */
export class MediaMessageScan {
  /** `media.track` as a leg (`inbound` caller, `outbound` agent); null when absent. */
  leg: Leg | null = null;
  /** Byte range of `media.payload`'s text inside the scanned message (-1 when absent). */
  payloadStart = FAIL;
  payloadEnd = FAIL;
  /** `media.timestamp` and `media.chunk` when present as plain integers; -1 when absent. */
  timestamp = FAIL;
  chunk = FAIL;
  #sawEvent = false;
  #sawMedia = false;
  #sawTrack = false;
  readonly #flat: boolean;
  readonly #eventKey: Uint8Array;

  constructor(layout: MediaLayout = 'nested') {
    this.#flat = layout === 'flat';
    this.#eventKey = this.#flat ? KEY_EVENT_TYPE : KEY_EVENT;
  }

  /**
   * True when `message` is one JSON object, nothing around it but whitespace, whose `event` is
   * `"media"` and whose `media` is an object (flat: whose `eventType` is `"media"`), every field
   * read here plain and given once. False means "parse it the ordinary way", never "invalid".
   *
   * Every string it passes must be printable ASCII without escapes, so an accepted message is
   * valid UTF-8 and the socket need not check that first (`skipUTF8Validation`); anything else
   * goes to the ordinary parser, which checks it.
   *
   * One check is the reader's: the payload's text is taken to its closing quote unexamined, and
   * the message is well-formed only if that text holds no backslash, control or non-ASCII byte,
   * which its base64 decoder (`decodeBase64`) rejects with every other byte outside the alphabet.
   */
  scan(message: Uint8Array): boolean {
    this.leg = null;
    this.payloadStart = this.payloadEnd = this.timestamp = this.chunk = FAIL;
    this.#sawEvent = this.#sawMedia = this.#sawTrack = false;
    const i = skipSpace(message, 0);
    if (message[i] !== OPEN_OBJECT) return false;
    const end = this.#object(message, i, false);
    return (
      end !== FAIL && skipSpace(message, end) === message.length && this.#sawEvent && (this.#flat || this.#sawMedia)
    );
  }

  /**
   * Past the top-level object (`inMedia` false) or `media` that opens at `i`, or FAIL. Its own
   * loop rather than `skipItems` with a callback: the frame path's hottest loop, and a call
   * through a callback there cost a third of the scan (bench profile, 500 calls).
   */
  #object(b: Uint8Array, i: number, inMedia: boolean): number {
    i = skipSpace(b, i + 1);
    if (b[i] === CLOSE_OBJECT) return i + 1;
    for (;;) {
      if (b[i] !== QUOTE) return FAIL;
      const keyStart = i + 1;
      const keyEnd = plainStringEnd(b, keyStart);
      if (keyEnd === FAIL) return FAIL;
      i = skipSpace(b, keyEnd + 1);
      if (b[i] !== COLON) return FAIL;
      i = skipSpace(b, i + 1);
      i = inMedia ? this.#mediaValue(b, i, keyStart, keyEnd) : this.#topValue(b, i, keyStart, keyEnd);
      if (i === FAIL) return FAIL;
      i = skipSpace(b, i);
      if (b[i] === CLOSE_OBJECT) return i + 1;
      if (b[i] !== COMMA) return FAIL;
      i = skipSpace(b, i + 1);
    }
  }

  /** Past the value at `i` of the top-level key `b[keyStart, keyEnd)`, or FAIL. */
  #topValue(b: Uint8Array, i: number, keyStart: number, keyEnd: number): number {
    if (equals(b, keyStart, keyEnd, this.#eventKey)) {
      if (this.#sawEvent || b[i] !== QUOTE) return FAIL;
      this.#sawEvent = true;
      const end = plainStringEnd(b, i + 1);
      return end !== FAIL && equals(b, i + 1, end, VALUE_MEDIA) ? end + 1 : FAIL;
    }
    // Flat: the media fields are the top level's.
    if (this.#flat) return this.#mediaValue(b, i, keyStart, keyEnd);
    if (equals(b, keyStart, keyEnd, KEY_MEDIA)) {
      if (this.#sawMedia || b[i] !== OPEN_OBJECT) return FAIL;
      this.#sawMedia = true;
      return this.#object(b, i, true);
    }
    return skipPlainValue(b, i, 1);
  }

  /** Past the value at `i` of the `media` key `b[keyStart, keyEnd)` (flat: the top-level key), or FAIL. */
  #mediaValue(b: Uint8Array, i: number, keyStart: number, keyEnd: number): number {
    if (equals(b, keyStart, keyEnd, KEY_PAYLOAD)) {
      if (this.payloadStart !== FAIL || b[i] !== QUOTE) return FAIL;
      // The closing quote by memchr: the text between is left to the payload's decoder.
      const close = Buffer.prototype.indexOf.call(b, QUOTE, i + 1);
      if (close < 0) return FAIL;
      this.payloadStart = i + 1;
      this.payloadEnd = close;
      return close + 1;
    }
    if (equals(b, keyStart, keyEnd, KEY_TRACK)) {
      if (this.#sawTrack || b[i] !== QUOTE) return FAIL;
      this.#sawTrack = true;
      const end = plainStringEnd(b, i + 1);
      if (end === FAIL) return FAIL;
      if (equals(b, i + 1, end, VALUE_INBOUND)) this.leg = 'caller';
      else if (equals(b, i + 1, end, VALUE_OUTBOUND)) this.leg = 'agent';
      else return FAIL;
      return end + 1;
    }
    const isTimestamp = equals(b, keyStart, keyEnd, KEY_TIMESTAMP);
    if (isTimestamp || equals(b, keyStart, keyEnd, KEY_CHUNK)) {
      if ((isTimestamp ? this.timestamp : this.chunk) !== FAIL) return FAIL;
      // A decimal string (as Twilio and Telnyx send them) or a bare integer.
      const quoted = b[i] === QUOTE;
      const start = quoted ? i + 1 : i;
      let end = start;
      let value = 0;
      while (isDigit(b[end]) && end - start < MAX_DIGITS) value = value * 10 + (b[end++] - ZERO);
      if (end === start) return FAIL;
      if (quoted) {
        if (b[end] !== QUOTE) return FAIL;
        end++;
      } else if (
        isDigit(b[end]) ||
        b[end] === DOT ||
        b[end] === 0x65 ||
        b[end] === 0x45 ||
        (b[start] === ZERO && end - start > 1)
      ) {
        return FAIL;
      }
      if (isTimestamp) this.timestamp = value;
      else this.chunk = value;
      return end;
    }
    return skipPlainValue(b, i, 2);
  }
}

/** `skipValue`, with a plain string (the usual case: ids, sequence numbers) read the short way. */
function skipPlainValue(b: Uint8Array, i: number, depth: number): number {
  if (b[i] !== QUOTE) return skipValue(b, i, depth);
  const end = plainStringEnd(b, i + 1);
  return end === FAIL ? skipString(b, i) : end + 1;
}

const PAD = 0x3d;

/** Bytes the base64 text `src[start, end)` decodes to, or -1 when it is not whole, padded base64. */
export function base64Length(src: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length % 4 !== 0) return FAIL;
  const padding = length === 0 ? 0 : src[end - 1] !== PAD ? 0 : src[end - 2] === PAD ? 2 : 1;
  return (length / 4) * 3 - padding;
}
