import * as sdpTransform from 'sdp-transform';
import type { Codec, Leg } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import { SipParseError, type SipHeaders } from './message.js';
import { readMetadata, type Participant, type RecordingMetadata } from './metadata.js';

export type { Participant } from './metadata.js';

/** One audio stream callrec records: its place in the SDP, and the leg its audio goes to. */
export interface RecordedStream {
  /** Index of its m= line in the offer (the answer keeps the order). */
  index: number;
  label: string;
  leg: Leg;
  /** Who sends it, when the metadata says. */
  participant: Participant | null;
  /** The SRC's address for it (c= line) and port: RTP comes from there. */
  address: string;
  port: number;
  /** The offered payload types of the chosen codec and of telephone-event (-1: not offered). */
  payloadType: number;
  eventPayloadType: number;
}

/** What a SIPREC INVITE offers: its SDP, parsed, and the streams callrec records. */
export interface RecordingOffer {
  sdp: sdpTransform.SessionDescription;
  codec: Codec;
  streams: RecordedStream[];
  participants: Participant[];
  /** The INVITE's recording metadata, if it had one. */
  metadata: RecordingMetadata | null;
}

/** Codecs callrec decodes (media/codec.ts), by their SDP encoding name; static payload types 0 and 8 need no rtpmap. */
const CODECS: Readonly<Record<string, Codec>> = { PCMU: 'pcmu', PCMA: 'pcma' };
const STATIC: Readonly<Record<number, string>> = { 0: 'PCMU', 8: 'PCMA' };

/** The `multipart/mixed` parts of a body (RFC 2046 §5.1), by lower-cased Content-Type without parameters. */
export function multipartParts(contentType: string, body: Buffer): Map<string, string> {
  const boundary = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) throw new SipParseError('multipart/mixed without a boundary');
  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  const parts = new Map<string, string>();
  const text = body.toString('utf8');
  for (const chunk of text.split(delimiter).slice(1)) {
    if (chunk.startsWith('--')) break;
    const blank = chunk.search(/\r?\n\r?\n/);
    if (blank < 0) continue;
    const head = chunk.slice(0, blank);
    const type = /^content-type\s*:\s*([^;\r\n]+)/im.exec(head)?.[1].trim().toLowerCase();
    if (type)
      parts.set(
        type,
        chunk
          .slice(blank)
          .replace(/^\r?\n\r?\n/, '')
          .replace(/\r?\n$/, ''),
      );
  }
  return parts;
}

/**
 * Reads a SIPREC INVITE's body: the SDP offer and the `application/rs-metadata+xml`
 * document. Throws `ERR_SIP_PARSE` (400) for a body that is not one, `ERR_SIP_NOT_ACCEPTABLE`
 * (488) when no codec callrec decodes is offered on every audio stream. `isAgent` (the agent's
 * `siprec_agent_aor`) picks the agent among the participants by AOR.
 */
export function readOffer(
  headers: SipHeaders,
  body: Buffer,
  isAgent: ((aor: string) => boolean) | null = null,
): RecordingOffer {
  const { sdp: sdpText, metadata: metadataText } = readBody(headers, body);
  if (!sdpText) throw new SipParseError('no SDP offer in the body', headers, 'INVITE');
  let sdp: sdpTransform.SessionDescription;
  try {
    sdp = sdpTransform.parse(sdpText);
  } catch (err) {
    throw new SipParseError(`bad SDP: ${(err as Error).message}`, headers, 'INVITE');
  }
  const metadata = metadataText ? readMetadata(metadataText) : null;
  const byId = new Map(metadata?.participants.map((p) => [p.id, p]));
  const audio = (sdp.media ?? [])
    .map((media, index) => ({ media, index }))
    .filter(
      ({ media }) =>
        media.type === 'audio' && media.port !== 0 && media.direction !== 'inactive' && media.direction !== 'recvonly',
    )
    .map(({ media, index }) => {
      const label = String(media.label ?? index);
      return { media, index, label, participant: byId.get(metadata?.senderOf.get(label) ?? '') ?? null };
    });
  if (audio.length === 0) throw new CallrecError('ERR_SIP_NOT_ACCEPTABLE', 'no audio stream to record in the offer');
  const codec = chooseCodec(audio.map(({ media }) => media));
  // The agent named by AOR, when the setting matches some senders but not all; otherwise the
  // caller is whoever sends the first audio stream (SBCs list the calling party first).
  const agentSent = audio.map(({ participant }) => !!participant && !!isAgent?.(participant.aor));
  const byAor = agentSent.includes(true) && agentSent.includes(false);
  const firstSender = audio[0].participant;
  const streams = audio.map(({ media, index, label, participant }, i): RecordedStream => {
    const isCaller = byAor ? !agentSent[i] : firstSender && participant ? participant === firstSender : i === 0;
    return {
      index,
      label,
      leg: isCaller ? 'caller' : 'agent',
      participant,
      address: media.connection?.ip ?? sdp.connection?.ip ?? '',
      port: media.port,
      payloadType: payloadTypeOf(media, codec),
      eventPayloadType:
        media.rtp.find((r) => r.codec.toLowerCase() === 'telephone-event' && r.rate === 8000)?.payload ?? -1,
    };
  });
  return { sdp, codec, streams, participants: metadata?.participants ?? [], metadata };
}

/**
 * The SDP and the recording metadata of a body: `application/sdp`, `application/rs-metadata+xml`,
 * or both in `multipart/mixed` (an INVITE's, a re-INVITE's or an UPDATE's); null for what it lacks.
 */
export function readBody(headers: SipHeaders, body: Buffer): { sdp: string | null; metadata: string | null } {
  const contentType = headers.get('content-type') ?? '';
  if (/^multipart\/mixed\b/i.test(contentType)) {
    const parts = multipartParts(contentType, body);
    return { sdp: parts.get('application/sdp') ?? null, metadata: parts.get('application/rs-metadata+xml') ?? null };
  }
  if (body.length === 0) return { sdp: null, metadata: null };
  if (/^application\/sdp\b/i.test(contentType)) return { sdp: body.toString('utf8'), metadata: null };
  if (/^application\/rs-metadata\+xml\b/i.test(contentType)) return { sdp: null, metadata: body.toString('utf8') };
  return { sdp: null, metadata: null };
}

/** The offered payload formats of a stream, by encoding name (static ones without rtpmap included). */
function formats(media: sdpTransform.MediaDescription): { payload: number; name: string; rate: number }[] {
  return String(media.payloads ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .map((payload) => {
      const rtp = media.rtp.find((r) => r.payload === payload);
      return { payload, name: (rtp?.codec ?? STATIC[payload] ?? '').toUpperCase(), rate: rtp?.rate ?? 8000 };
    });
}

/** The first codec of the first stream's list that callrec decodes and every stream offers (one format per call). */
function chooseCodec(audio: sdpTransform.MediaDescription[]): Codec {
  for (const { name, rate } of formats(audio[0])) {
    if (
      CODECS[name] &&
      rate === 8000 &&
      audio.every((media) => formats(media).some((f) => f.name === name && f.rate === 8000))
    )
      return CODECS[name];
  }
  const offered = [...new Set(audio.flatMap((media) => formats(media).map((f) => f.name)))].join(', ');
  throw new CallrecError(
    'ERR_SIP_NOT_ACCEPTABLE',
    `no codec callrec records is offered on every stream (offered: ${offered.slice(0, 100)}; callrec takes PCMU, PCMA)`,
  );
}

function payloadTypeOf(media: sdpTransform.MediaDescription, codec: Codec): number {
  return formats(media).find((f) => CODECS[f.name] === codec)!.payload;
}

/**
 * The SDP answer: every recorded stream `a=recvonly` on its RTP port with the chosen codec
 * (and telephone-event when offered), every other stream refused (port 0, RFC 3264 §6).
 */
export function answerSdp(
  offer: RecordingOffer,
  address: string,
  ports: ReadonlyMap<number, number>,
  sessionId: number,
): string {
  const family = address.includes(':') ? 6 : 4;
  const media = (offer.sdp.media ?? []).map((m, index) => {
    const stream = offer.streams.find((s) => s.index === index);
    const port = ports.get(index);
    if (!stream || port === undefined)
      return {
        type: m.type,
        port: 0,
        protocol: m.protocol,
        payloads: m.payloads,
        rtp: [],
        fmtp: [],
        ...(m.label === undefined ? {} : { label: m.label }),
      };
    const rtp = offer.sdp.media[index].rtp.filter(
      (r) => r.payload === stream.payloadType || r.payload === stream.eventPayloadType,
    );
    if (!rtp.some((r) => r.payload === stream.payloadType))
      rtp.unshift({ payload: stream.payloadType, codec: offer.codec === 'pcmu' ? 'PCMU' : 'PCMA', rate: 8000 });
    const payloads = [stream.payloadType, ...(stream.eventPayloadType >= 0 ? [stream.eventPayloadType] : [])].join(' ');
    const fmtp = (m.fmtp ?? []).filter((f) => f.payload === stream.eventPayloadType);
    return {
      type: 'audio',
      port,
      protocol: m.protocol,
      payloads,
      rtp,
      fmtp,
      direction: 'recvonly' as const,
      ptime: m.ptime,
      ...(m.label === undefined ? {} : { label: m.label }),
    };
  });
  return sdpTransform.write({
    version: 0,
    origin: { username: 'callrec', sessionId, sessionVersion: 1, netType: 'IN', ipVer: family, address },
    name: 'callrec',
    connection: { version: family, ip: address },
    timing: { start: 0, stop: 0 },
    media: media as sdpTransform.MediaDescription[],
  });
}
