import { XMLParser } from 'fast-xml-parser';
import type { Leg } from '../../media/types.js';
import type { JsonObject } from '../store/calls.js';
import { SipParseError } from './message.js';

/** A participant of the recorded call, as the RFC 7865 metadata names it. */
export interface Participant {
  id: string;
  /** The participant's address of record (`sip:alice@example.com`, `tel:+1…`); '' when not given. */
  aor: string;
  name: string;
}

/** One `application/rs-metadata+xml` document (RFC 7865), as callrec reads it. */
export interface RecordingMetadata {
  /** `datamode` complete (the whole picture, the default) or partial (RFC 7866 §8.2: changes only). */
  complete: boolean;
  /** The participants the document describes (a partial update: the new and the changed ones). */
  participants: Participant[];
  /** The participant id sending each stream, by the stream's SDP label (by its `stream_id` when this document does not label it). */
  senderOf: Map<string, string>;
  /** Each stream's SDP label by its `stream_id` (a partial update names streams an earlier document labelled). */
  labels: Map<string, string>;
  /** `participantsessionassoc` times by participant id: when each joined and left the session (ISO-8601), null if not said. */
  sessions: Map<string, { joined: string | null; left: string | null }>;
}

const METADATA_LISTS = new Set([
  'participant',
  'stream',
  'participantstreamassoc',
  'participantsessionassoc',
  'send',
  'nameID',
  'name',
]);
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  isArray: (name) => METADATA_LISTS.has(name),
  processEntities: true,
});

type XmlNode = Record<string, unknown>;

const text = (node: unknown): string =>
  (typeof node === 'object' && node !== null
    ? String((node as XmlNode)['#text'] ?? '')
    : node === undefined
      ? ''
      : String(node)
  ).trim();

/** An RFC 7865 `xs:dateTime` as ISO-8601 UTC; null when absent or unreadable. */
function time(node: unknown): string | null {
  const ms = Date.parse(text(node));
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/**
 * Reads RFC 7865 metadata: participants (AOR from `nameID`, display name), which stream (by
 * label) each sends, from `participantstreamassoc` or, in the older RFC 7866 drafts' form, the
 * participant's own `send` elements, and the `participantsessionassoc` join and leave times.
 * Throws `ERR_SIP_PARSE` for a document that is not one.
 */
export function readMetadata(document: string): RecordingMetadata {
  let root: XmlNode;
  try {
    root = (xml.parse(document) as XmlNode).recording as XmlNode;
  } catch (err) {
    throw new SipParseError(`bad recording metadata: ${(err as Error).message}`);
  }
  if (!root || typeof root !== 'object') throw new SipParseError('recording metadata without a <recording> element');
  const list = (name: string) => ((root[name] as XmlNode[] | undefined) ?? []).filter((n) => typeof n === 'object');
  const participants = list('participant').map((p): Participant & { sends: string[] } => {
    const nameId = (p.nameID as XmlNode[] | undefined)?.[0] ?? {};
    return {
      id: String(p.participant_id ?? p.id ?? ''),
      aor: String(nameId.aor ?? p.aor ?? ''),
      name: text((nameId.name as unknown[] | undefined)?.[0] ?? (p.name as unknown[] | undefined)?.[0]),
      sends: ((p.send as unknown[] | undefined) ?? []).map(text),
    };
  });
  const labelOf = new Map(list('stream').map((s) => [String(s.stream_id ?? s.id ?? ''), text(s.label)]));
  const senderOf = new Map<string, string>();
  for (const p of participants) for (const streamId of p.sends) senderOf.set(labelOf.get(streamId) ?? streamId, p.id);
  for (const assoc of list('participantstreamassoc'))
    for (const streamId of ((assoc.send as unknown[] | undefined) ?? []).map(text))
      senderOf.set(labelOf.get(streamId) ?? streamId, String(assoc.participant_id ?? ''));
  const sessions = new Map(
    list('participantsessionassoc').map((a) => [
      String(a.participant_id ?? ''),
      { joined: time(a['associate-time']), left: time(a['disassociate-time']) },
    ]),
  );
  return {
    complete: text(root.datamode) !== 'partial',
    participants: participants.map(({ sends: _, ...p }) => p),
    senderOf,
    labels: labelOf,
    sessions,
  };
}

/** A participant as the call keeps it: the leg its audio is on (null: it sends no recorded stream), and when it joined or left mid-call. */
export interface ParticipantRecord extends Participant {
  leg: Leg | null;
  /** Set for a participant a metadata update added (absent: there from the start). */
  joined_at?: string;
  /** Set once the metadata says it left. */
  left_at?: string;
}

/** Most participants a call keeps: a metadata update naming more is cut there (memory per call is bounded). */
export const MAX_PARTICIPANTS = 64;

/**
 * The participants of one recording session, kept up to date by the SRC's metadata updates
 * (RFC 7866 §8.2). A stream's leg is fixed by its label when the session starts: when the
 * metadata says another participant now sends it (a transfer), the new participant is on that
 * leg, and the audio stays where it was.
 */
export class ParticipantRoster {
  readonly #byId = new Map<string, ParticipantRecord>();
  readonly #legOf: Map<string, Leg>;
  /** Stream labels by `stream_id`, from every document so far. */
  readonly #labels = new Map<string, string>();
  /** The latest sender's participant id by stream label (or `stream_id`), from every document so far. */
  readonly #senders = new Map<string, string>();

  /** `legOf`: each recorded stream's leg by its label; `metadata`: the INVITE's. */
  constructor(legOf: ReadonlyMap<string, Leg>, metadata: RecordingMetadata | null) {
    this.#legOf = new Map(legOf);
    if (!metadata) return;
    this.#learn(metadata);
    for (const p of metadata.participants.slice(0, MAX_PARTICIPANTS)) this.#byId.set(p.id, { ...p, leg: null });
    // In label order, so a participant sending two streams is on the first one's leg.
    for (const [label, leg] of [...legOf].reverse()) {
      const sender = this.#byId.get(metadata.senderOf.get(label) ?? '');
      if (sender) sender.leg = leg;
    }
  }

  /** The participants, in the order they were first named. */
  list(): JsonObject[] {
    return [...this.#byId.values()].map((p) => ({ ...p }));
  }

  /**
   * Applies a metadata update (`at`: when it arrived, ISO-8601): new participants join, named ones
   * take their new AOR and name, a stream's new sender takes its leg, a `disassociate-time` (or,
   * in a complete document, not being listed) marks a participant as left. Returns whether
   * anything changed.
   */
  apply(update: RecordingMetadata, at: string): boolean {
    const before = JSON.stringify(this.list());
    this.#learn(update);
    const listed = new Set<string>();
    const named = (id: string): ParticipantRecord | null => {
      listed.add(id);
      let p = this.#byId.get(id);
      if (!p && id && this.#byId.size < MAX_PARTICIPANTS) {
        p = { id, aor: '', name: '', leg: null, joined_at: update.sessions.get(id)?.joined ?? at };
        this.#byId.set(id, p);
      }
      return p ?? null;
    };
    for (const { id, aor, name } of update.participants) {
      const p = named(id);
      if (!p) continue;
      if (aor) p.aor = aor;
      if (name) p.name = name;
    }
    for (const [stream, id] of update.senderOf) {
      const leg = this.#legOf.get(stream) ?? this.#legOf.get(this.#labels.get(stream) ?? '');
      const p = named(id);
      if (leg && p) p.leg = leg;
    }
    for (const [id, { left }] of update.sessions) {
      const p = named(id);
      if (!p) continue;
      if (left) p.left_at = left;
      else delete p.left_at;
    }
    if (update.complete)
      for (const p of this.#byId.values()) if (!listed.has(p.id) && p.left_at === undefined) p.left_at = at;
    return JSON.stringify(this.list()) !== before;
  }

  /** Who the metadata so far says sends the stream labelled `label`; null when it has not said. */
  sender(label: string): ParticipantRecord | null {
    let id = this.#senders.get(label);
    for (const [streamId, l] of this.#labels) if (l === label) id = this.#senders.get(streamId) ?? id;
    return this.#byId.get(id ?? '') ?? null;
  }

  /**
   * A stream added mid-session (a re-INVITE's new m-line) records on `leg`: its sender, when
   * known and on no leg yet, is on it. Returns whether the participants changed.
   */
  addStream(label: string, leg: Leg): boolean {
    this.#legOf.set(label, leg);
    const sender = this.sender(label);
    if (!sender || sender.leg !== null) return false;
    sender.leg = leg;
    return true;
  }

  /** Keeps the stream labels and senders a document gives (bounded as the participants are). */
  #learn(metadata: RecordingMetadata): void {
    for (const [id, label] of metadata.labels)
      if (this.#labels.has(id) || this.#labels.size < MAX_PARTICIPANTS) this.#labels.set(id, label);
    for (const [stream, id] of metadata.senderOf)
      if (this.#senders.has(stream) || this.#senders.size < MAX_PARTICIPANTS) this.#senders.set(stream, id);
  }
}
