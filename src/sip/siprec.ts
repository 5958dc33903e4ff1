import type dgram from 'node:dgram';
import type { MediaContext } from '../calls/live-call.js';
import type { CallSession } from '../calls/session.js';
import type { SipConfig } from '../config.js';
import { errorCode, sipStatus, type CallrecError } from '../errors.js';
import { isSafeId } from '../ids.js';
import type { Logger } from '../log.js';
import { isSipSource } from '../tenants/settings.js';
import { parseNameAddr, parseSipUri, responseTo, SipParseError, type SipRequest } from './message.js';
import { readOffer } from './offer.js';
import { RecordingSession } from './recording-session.js';
import { RtpPorts } from './rtp.js';
import { ALLOW, localTag, SipServer, withHeader, type SipHandler } from './server.js';
import type { ServerTransaction } from './transaction.js';
import { SipTransport, type SipSource } from './transport.js';

export interface SiprecOptions {
  config: SipConfig;
  media: MediaContext;
  log: Logger;
  /** True while the node drains: new sessions 503 with Retry-After, live ones run on. */
  draining(): boolean;
  /** Why the node takes no new call now (spool disk, MAX_STREAMS_PER_NODE): the INVITE is answered 503; null: it takes one. */
  refusal(): CallrecError | null;
  /** Each session's call, as it starts: the node counts, drains and shuts it down with its WebSocket calls. */
  onCall(call: CallSession): void;
}

/**
 * A SIPREC call id from the SIP Call-ID: as is when it is a safe id (`src/ids.ts`), else with
 * each character outside the safe set replaced by `_` (`1-42@10.0.0.1` → `1-42_10.0.0.1`).
 */
export function siprecCallId(sipCallId: string): string {
  const id: unknown = sipCallId;
  if (isSafeId(id)) return id;
  const safe = sipCallId.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 128);
  return safe === '.' || safe === '..' ? '_' : safe;
}

/**
 * The Session Recording Server (RFC 7866): takes recording sessions (INVITE with
 * `Require: siprec` or a `+sip.src` Contact) from the SRCs of a tenant's `sip_sources`, answers
 * them (`RecordingSession`) and ends them on BYE or CANCEL.
 */
export class SiprecServer implements SipHandler {
  readonly transport: SipTransport;
  readonly server: SipServer;
  readonly #options: SiprecOptions;
  readonly #ports: RtpPorts;
  /** Live sessions by Call-ID and the SRC's tag. */
  readonly #sessions = new Map<string, RecordingSession>();

  constructor(options: SiprecOptions) {
    this.#options = options;
    this.transport = new SipTransport(options.log);
    this.server = new SipServer({ transport: this.transport, handler: this, log: options.log, draining: options.draining, metrics: options.media.metrics });
    this.#ports = new RtpPorts(options.config.rtpPorts);
  }

  listen(): Promise<void> {
    return this.transport.listen(this.#options.config.listen);
  }

  async close(): Promise<void> {
    this.server.close();
    await this.transport.close();
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  request(request: SipRequest, transaction: ServerTransaction, source: SipSource): void {
    const session = this.#sessions.get(dialogKey(request));
    switch (request.method) {
      case 'INVITE':
        if (session) return session.reinvite(transaction);
        if (parseNameAddr(request.headers.get('to')!)?.params.has('tag')) return transaction.respond(responseTo(request, 481));
        void this.#invite(request, transaction, source);
        return;
      case 'BYE':
        if (!session) return transaction.respond(responseTo(request, 481));
        return session.bye(transaction);
      default:
        return transaction.respond(withHeader(responseTo(request, 405, localTag()), 'Allow', ALLOW));
    }
  }

  ack(request: SipRequest): void {
    this.#sessions.get(dialogKey(request))?.ack();
  }

  cancel(transaction: ServerTransaction): void {
    const session = this.#sessions.get(dialogKey(transaction.request));
    // Before its session exists (sources and offer still being checked) the INVITE ends here.
    if (session) session.cancel();
    else transaction.respond(responseTo(transaction.request, 487, localTag()));
  }

  async #invite(request: SipRequest, transaction: ServerTransaction, source: SipSource): Promise<void> {
    const { log, media, config } = this.#options;
    const refuse = (status: number, reason: string) => {
      const response = responseTo(request, status, localTag(), reason);
      transaction.respond(status === 503 ? withHeader(response, 'Retry-After', '60') : response);
    };
    const sockets = new Map<number, dgram.Socket>();
    try {
      if (this.#options.draining()) return refuse(503, 'Draining');
      const refusal = this.#options.refusal();
      if (refusal) return refuse(sipStatus(refusal), refusal.message.slice(0, 120));
      const isSiprec = /(^|,)\s*siprec\s*($|,)/i.test(request.headers.getAll('require').join(',')) || request.headers.getAll('contact').some((c) => parseNameAddr(c)?.params.has('+sip.src'));
      if (!isSiprec) return refuse(403, 'Not a recording session (no Require: siprec or +sip.src)');
      const tenants = await media.store.tenants.list();
      const tenant = tenants.find((t) => isSipSource(t, source.address));
      // Nothing is recorded for a source no tenant lists.
      if (!tenant) return refuse(403, 'Source not allowed');
      const offer = readOffer(request.headers, request.body);
      const agentId = parseSipUri(request.uri)?.user ?? '';
      for (const stream of offer.streams) sockets.set(stream.index, await this.#ports.open(config.listen[0].host === '0.0.0.0' ? '0.0.0.0' : config.publicAddress));
      if (transaction.status !== 'proceeding') return void closeAll(sockets);
      const session = new RecordingSession(
        { media, log: log.child({ sipCallId: request.headers.get('call-id') }), publicAddress: config.publicAddress, contactPort: this.transport.addresses().find((a) => a.protocol === source.protocol)!.port, send: (bye, peer) => void this.server.send(bye, peer) },
        transaction,
        source,
        offer,
        sockets,
        { tenantId: tenant.id, agentId, callId: siprecCallId(request.headers.get('call-id')!) },
      );
      const key = dialogKey(request);
      this.#sessions.set(key, session);
      this.#options.onCall(session.call);
      session.on('stateChange', (_, next) => {
        if (next.status === 'ended' && this.#sessions.get(key) === session) this.#sessions.delete(key);
      });
      log.info({ callId: session.callId, participants: offer.participants.map((p) => p.aor || p.name) }, 'SIPREC session offered');
    } catch (err) {
      closeAll(sockets);
      const code = errorCode(err);
      if (!code || (!(err instanceof SipParseError) && sipStatus(err) === 500)) log.error({ err }, 'SIPREC INVITE failed');
      refuse(sipStatus(err), (err as Error).message.slice(0, 120));
    }
  }
}

function closeAll(sockets: Map<number, dgram.Socket>): void {
  for (const socket of sockets.values()) socket.close();
}

/** A dialog's key at the UAS: Call-ID and the SRC's tag (RFC 3261 §12). */
function dialogKey(request: SipRequest): string {
  return `${request.headers.get('call-id')}\u0000${parseNameAddr(request.headers.get('from')!)?.params.get('tag') ?? ''}`;
}
