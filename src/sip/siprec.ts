import type { MediaContext } from '../calls/live-call.js';
import type { CallSession } from '../calls/session.js';
import type { SipConfig } from '../config.js';
import { errorCode, sipStatus, type CallrecError } from '../errors.js';
import { isSafeId } from '../ids.js';
import type { Logger } from '../log.js';
import { matchesAor, resolveCallRecording } from '../agents/settings.js';
import { hasScope } from '../auth/scopes.js';
import type { MasterKeyring } from '../crypto/keys.js';
import { isSipSource } from '../tenants/settings.js';
import { checkDigest, DigestNonces, openDigest, parseDigest } from './digest.js';
import { parseNameAddr, parseSipUri, responseTo, SipParseError, type SipRequest } from './message.js';
import { readOffer } from './offer.js';
import { RecordingSession } from './recording-session.js';
import { RtpPorts, type RtpSockets } from './rtp.js';
import { ALLOW, localTag, SipServer, withHeader, type SipHandler } from './server.js';
import { allowsUpdate, negotiateSessionTimer } from './session-timer.js';
import type { ServerTransaction } from './transaction.js';
import { SipTransport, type SipSource } from './transport.js';

export interface SiprecOptions {
  config: SipConfig;
  media: MediaContext;
  /** Opens the sealed HA1s of keys created with `sip_digest`. */
  keyring: MasterKeyring;
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
  readonly #nonces = new DigestNonces();
  /** Live sessions by Call-ID and the SRC's tag. */
  readonly #sessions = new Map<string, RecordingSession>();

  constructor(options: SiprecOptions) {
    this.#options = options;
    this.transport = new SipTransport(options.log);
    this.server = new SipServer({
      transport: this.transport,
      handler: this,
      log: options.log,
      draining: options.draining,
      metrics: options.media.metrics,
    });
    this.#ports = new RtpPorts(options.config.rtpPorts);
  }

  listen(): Promise<void> {
    return this.transport.listen(this.#options.config.listen, this.#options.config.tls);
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
        if (session) return session.modify(transaction);
        if (parseNameAddr(request.headers.get('to')!)?.params.has('tag'))
          return transaction.respond(responseTo(request, 481));
        void this.#invite(request, transaction, source);
        return;
      case 'UPDATE':
        if (!session) return transaction.respond(responseTo(request, 481));
        return session.modify(transaction);
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

  /**
   * The tenant an INVITE is from: the one whose `sip_sources` hold its source address, else the
   * one whose `sip_digest` key answered the digest challenge. Otherwise the INVITE is answered
   * (401 with a challenge, 403 for wrong credentials, counted against the address's
   * AUTH_FAILURES_PER_IP) and null returned: nothing is recorded.
   */
  async #authenticate(request: SipRequest, transaction: ServerTransaction, source: SipSource): Promise<string | null> {
    const { store, authFailures } = this.#options.media;
    const forbid = (reason: string) => {
      transaction.respond(responseTo(request, 403, localTag(), reason));
      return null;
    };
    const tenant = (await store.tenants.list()).find((t) => isSipSource(t, source.address));
    if (tenant) return tenant.id;
    if (authFailures.retryAfterMs(source.address) > 0) return forbid('Too many failed authentications');
    const authorization = request.headers.get('authorization');
    if (!authorization) {
      transaction.respond(challenge(request, this.#nonces, false));
      return null;
    }
    const credentials = parseDigest(authorization);
    if (credentials && !this.#nonces.valid(credentials.nonce)) {
      transaction.respond(challenge(request, this.#nonces, true));
      return null;
    }
    const key = credentials && (await store.keys.sipDigest(credentials.username));
    const principal = key && {
      keyId: credentials.username,
      tenantId: key.tenantId,
      scopes: key.scopes,
      operator: false,
    };
    if (
      !credentials ||
      !key ||
      !principal ||
      !hasScope(principal, 'media:stream') ||
      !checkDigest(credentials, request.method, openDigest(this.#options.keyring, credentials.username, key.sealed))
    ) {
      authFailures.fail(source.address);
      return forbid('Source not allowed');
    }
    return key.tenantId;
  }

  async #invite(request: SipRequest, transaction: ServerTransaction, source: SipSource): Promise<void> {
    const { log, media, config } = this.#options;
    const refuse = (status: number, reason: string) => {
      const response = responseTo(request, status, localTag(), reason);
      transaction.respond(status === 503 ? withHeader(response, 'Retry-After', '60') : response);
    };
    const sockets = new Map<number, RtpSockets>();
    try {
      if (this.#options.draining()) return refuse(503, 'Draining');
      const refusal = this.#options.refusal();
      if (refusal) return refuse(sipStatus(refusal), refusal.message.slice(0, 120));
      const isSiprec =
        /(^|,)\s*siprec\s*($|,)/i.test(request.headers.getAll('require').join(',')) ||
        request.headers.getAll('contact').some((c) => parseNameAddr(c)?.params.has('+sip.src'));
      if (!isSiprec) return refuse(403, 'Not a recording session (no Require: siprec or +sip.src)');
      const tenantId = await this.#authenticate(request, transaction, source);
      if (tenantId === null) return;
      const timer = negotiateSessionTimer(request.headers, config.minSessionExpires, allowsUpdate(request.headers));
      if (timer === 'too small')
        return void transaction.respond(
          withHeader(responseTo(request, 422, localTag()), 'Min-SE', String(config.minSessionExpires)),
        );
      const agentId = parseSipUri(request.uri)?.user ?? '';
      // The agent's settings are read again when the call starts (an unknown agent is refused there).
      const agent = await media.store.agents.get(tenantId, agentId);
      const agentAor = agent && resolveCallRecording(agent.settings).siprec_agent_aor;
      const isAgent = agentAor ? (aor: string) => matchesAor(agentAor, aor) : null;
      const offer = readOffer(request.headers, request.body, isAgent);
      // RTP is received on the SIP listener's (local) address: SIP_PUBLIC_ADDRESS may be a NAT's.
      const openRtp = () => this.#ports.open(config.listen[0].host);
      for (const stream of offer.streams) sockets.set(stream.index, await openRtp());
      if (transaction.status !== 'proceeding') return void closeAll(sockets);
      const session = new RecordingSession(
        {
          media,
          log: log.child({ sipCallId: request.headers.get('call-id') }),
          publicAddress: config.publicAddress,
          contactPort: this.transport.addresses().find((a) => a.protocol === source.protocol)!.port,
          send: (request, peer) => this.server.send(request, peer),
          minSessionExpires: config.minSessionExpires,
          openRtp,
          isAgent,
        },
        transaction,
        source,
        offer,
        sockets,
        { tenantId, agentId, callId: siprecCallId(request.headers.get('call-id')!) },
        timer,
      );
      const key = dialogKey(request);
      this.#sessions.set(key, session);
      media.metrics.sipSessionsActive.inc();
      this.#options.onCall(session.call);
      session.on('stateChange', (_, next) => {
        if (next.status !== 'ended') return;
        media.metrics.sipSessionsActive.dec();
        if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      });
      log.info(
        { callId: session.callId, participants: offer.participants.map((p) => p.aor || p.name) },
        'SIPREC session offered',
      );
    } catch (err) {
      closeAll(sockets);
      const code = errorCode(err);
      if (!code || (!(err instanceof SipParseError) && sipStatus(err) === 500))
        log.error({ err }, 'SIPREC INVITE failed');
      refuse(sipStatus(err), (err as Error).message.slice(0, 120));
    }
  }
}

/** A 401 with one digest challenge per algorithm, the preferred first (RFC 8760 §2.4). */
function challenge(request: SipRequest, nonces: DigestNonces, stale: boolean) {
  const response = responseTo(request, 401, localTag());
  for (const value of nonces.challenges(stale)) response.headers.add('WWW-Authenticate', value);
  return response;
}

function closeAll(sockets: Map<number, RtpSockets>): void {
  for (const { rtp } of sockets.values()) rtp.close();
}

/** A dialog's key at the UAS: Call-ID and the SRC's tag (RFC 3261 §12). */
function dialogKey(request: SipRequest): string {
  return `${request.headers.get('call-id')}\u0000${parseNameAddr(request.headers.get('from')!)?.params.get('tag') ?? ''}`;
}
