import * as sdpTransform from 'sdp-transform';
import type { Leg } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import { SipParseError, type SipHeaders } from './message.js';
import { DECODABLE, refusal, type RtpFormat } from './rtp-decoders.js';
import { answerCrypto, chooseCrypto, SRTP_SUITES, type SdesCrypto } from './srtp.js';
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
  /** The offered payload types of the chosen codec, of telephone-event and of comfort noise (-1: not offered). */
  payloadType: number;
  eventPayloadType: number;
  cnPayloadType: number;
  /** An `RTP/SAVP` stream's SDES key (RFC 4568); null for plain RTP. */
  srtp: SdesCrypto | null;
}

/** What a SIPREC INVITE offers: its SDP, parsed, and the streams callrec records. */
export interface RecordingOffer {
  sdp: sdpTransform.SessionDescription;
  /** The call's one format: every recorded stream offered it. */
  codec: RtpFormat;
  streams: RecordedStream[];
  participants: Participant[];
  /** The INVITE's recording metadata, if it had one. */
  metadata: RecordingMetadata | null;
}

/** The static payload types (RFC 3551 §6) that may come without an rtpmap. */
const STATIC: Readonly<Record<number, RtpFormat>> = {
  0: { name: 'PCMU', clockRate: 8000, channels: 1 },
  8: { name: 'PCMA', clockRate: 8000, channels: 1 },
  9: { name: 'G722', clockRate: 8000, channels: 1 },
  10: { name: 'L16', clockRate: 44100, channels: 2 },
  11: { name: 'L16', clockRate: 44100, channels: 1 },
  13: { name: 'CN', clockRate: 8000, channels: 1 },
};

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
 * (488) when no format callrec decodes is offered on every audio stream. `isAgent` (the agent's
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
  const offeredStreams = (sdp.media ?? [])
    .map((media, index) => ({ media, index, srtp: isSecure(media) ? chooseCrypto(media.crypto) : null }))
    .filter(({ media }) => isSentAudio(media));
  // An SRTP stream without a key callrec can use is refused (port 0) like any stream it cannot record.
  const audio = offeredStreams
    .filter(({ media, srtp }) => srtp || !isSecure(media))
    .map(({ media, index, srtp }) => {
      const label = String(media.label ?? index);
      return { media, index, srtp, label, participant: byId.get(metadata?.senderOf.get(label) ?? '') ?? null };
    });
  if (audio.length === 0)
    throw new CallrecError(
      'ERR_SIP_NOT_ACCEPTABLE',
      offeredStreams.length === 0
        ? 'no audio stream to record in the offer'
        : `SRTP without a key callrec takes (${SRTP_SUITES.join(', ')}, one inline key; offered: ${
            [...new Set(offeredStreams.flatMap(({ media }) => (media.crypto ?? []).map((c) => c.suite)))]
              .join(', ')
              .slice(0, 100) || 'no a=crypto'
          })`,
    );
  const codec = chooseCodec(audio.map(({ media }) => media));
  // The agent named by AOR, when the setting matches some senders but not all; otherwise the
  // caller is whoever sends the first audio stream (SBCs list the calling party first).
  const agentSent = audio.map(({ participant }) => !!participant && !!isAgent?.(participant.aor));
  const byAor = agentSent.includes(true) && agentSent.includes(false);
  const firstSender = audio[0].participant;
  const streams = audio.map(({ media, index, srtp, label, participant }, i): RecordedStream => {
    const isCaller = byAor ? !agentSent[i] : firstSender && participant ? participant === firstSender : i === 0;
    return {
      index,
      label,
      leg: isCaller ? 'caller' : 'agent',
      participant,
      address: media.connection?.ip ?? sdp.connection?.ip ?? '',
      port: media.port,
      ...payloadTypes(media, codec)!,
      srtp,
    };
  });
  return { sdp, codec, streams, participants: metadata?.participants ?? [], metadata };
}

/** A stream's payload types of `codec`, telephone-event and CN (-1: not offered); null when it does not offer `codec`. */
function payloadTypes(
  media: sdpTransform.MediaDescription,
  codec: RtpFormat,
): Pick<RecordedStream, 'payloadType' | 'eventPayloadType' | 'cnPayloadType'> | null {
  const offered = formats(media);
  const payloadType = offered.find((f) => sameFormat(f, codec))?.payload;
  if (payloadType === undefined) return null;
  // telephone-event and CN run on the codec's RTP clock (RFC 4733 §2.1, RFC 3389 §4).
  const onClock = (name: string) =>
    offered.find((f) => f.name === name && f.clockRate === codec.clockRate)?.payload ?? -1;
  return { payloadType, eventPayloadType: onClock('TELEPHONE-EVENT'), cnPayloadType: onClock('CN') };
}

/** Whether an offered m-line is an audio stream callrec would record: sent, on a port, not `recvonly`/`inactive`. */
function isSentAudio(media: sdpTransform.MediaDescription): boolean {
  return media.type === 'audio' && media.port !== 0 && media.direction !== 'inactive' && media.direction !== 'recvonly';
}

/**
 * A stream a re-INVITE or UPDATE adds (RFC 7866 §8: a participant joined), recorded in the
 * session's `codec`, without its leg and sender; null when callrec refuses it (port 0): not
 * sent audio, not offering the session's codec, or SRTP without a usable `a=crypto`.
 */
export function addedStream(
  sdp: sdpTransform.SessionDescription,
  index: number,
  codec: RtpFormat,
): Omit<RecordedStream, 'leg' | 'participant'> | null {
  const media = sdp.media[index];
  if (!media || !isSentAudio(media)) return null;
  const srtp = isSecure(media) ? chooseCrypto(media.crypto) : null;
  const types = payloadTypes(media, codec);
  if ((isSecure(media) && !srtp) || !types) return null;
  return {
    index,
    label: String(media.label ?? index),
    address: media.connection?.ip ?? sdp.connection?.ip ?? '',
    port: media.port,
    ...types,
    srtp,
  };
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

/** Whether a stream is SRTP (`RTP/SAVP`, `RTP/SAVPF`, …): its packets need a key. */
function isSecure(media: sdpTransform.MediaDescription): boolean {
  return /\bSAVPF?$/i.test(media.protocol);
}

/** The offered payload formats of a stream (static ones without rtpmap included), names upper-cased. */
function formats(media: sdpTransform.MediaDescription): (RtpFormat & { payload: number })[] {
  return String(media.payloads ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .map((payload) => {
      const rtp = media.rtp.find((r) => r.payload === payload);
      if (!rtp) return { payload, ...(STATIC[payload] ?? { name: '', clockRate: 0, channels: 1 }) };
      return { payload, name: rtp.codec.toUpperCase(), clockRate: rtp.rate ?? 0, channels: Number(rtp.encoding ?? 1) };
    });
}

const sameFormat = (a: RtpFormat, b: RtpFormat) =>
  a.name === b.name && a.clockRate === b.clockRate && a.channels === b.channels;

/**
 * The first format of the first stream's list that callrec decodes and every stream offers: one
 * format per call, in the SRC's order of preference.
 */
function chooseCodec(audio: sdpTransform.MediaDescription[]): RtpFormat {
  for (const format of formats(audio[0])) {
    if (refusal(format) === null && audio.every((media) => formats(media).some((f) => sameFormat(f, format))))
      return { name: format.name, clockRate: format.clockRate, channels: format.channels };
  }
  const offered = [...new Set(audio.flatMap((media) => formats(media).map((f) => f.name)))].join(', ');
  throw new CallrecError(
    'ERR_SIP_NOT_ACCEPTABLE',
    `callrec takes ${DECODABLE}: none on every stream (offered: ${offered.slice(0, 60)})`,
  );
}

/** The rtpmap of a format in an answer: its name as RFC 3551/7587 spell it. */
function rtpmapOf(
  payload: number,
  format: RtpFormat,
): { payload: number; codec: string; rate: number; encoding?: number } {
  const codec = format.name === 'OPUS' ? 'opus' : format.name;
  return { payload, codec, rate: format.clockRate, ...(format.channels > 1 ? { encoding: format.channels } : {}) };
}

/**
 * The SDP answer: every recorded stream `a=recvonly` on its RTP port with the chosen codec
 * (and telephone-event when offered) and, for SRTP, the chosen `a=crypto` with a key of
 * callrec's own; every other stream refused (port 0, RFC 3264 §6).
 */
export function answerSdp(
  offer: RecordingOffer,
  address: string,
  ports: ReadonlyMap<number, number>,
  sessionId: number,
  sessionVersion = 1,
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
    const answered = [stream.payloadType, stream.eventPayloadType, stream.cnPayloadType].filter((pt) => pt >= 0);
    const rtp = [
      rtpmapOf(stream.payloadType, offer.codec),
      ...m.rtp.filter((r) => r.payload === stream.eventPayloadType || r.payload === stream.cnPayloadType),
    ];
    const payloads = answered.join(' ');
    const fmtp = (m.fmtp ?? []).filter((f) => answered.includes(f.payload));
    return {
      type: 'audio',
      port,
      protocol: m.protocol,
      payloads,
      rtp,
      fmtp,
      direction: 'recvonly' as const,
      ...(stream.srtp ? { crypto: [answerCrypto(stream.srtp)] } : {}),
      ptime: m.ptime,
      ...(m.label === undefined ? {} : { label: m.label }),
    };
  });
  return sdpTransform.write({
    version: 0,
    origin: { username: 'callrec', sessionId, sessionVersion, netType: 'IN', ipVer: family, address },
    name: 'callrec',
    connection: { version: family, ip: address },
    timing: { start: 0, stop: 0 },
    media: media as sdpTransform.MediaDescription[],
  });
}
