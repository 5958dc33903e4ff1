/**
 * A SIPREC client (an RFC 7866 SRC) for the suites that load a node from outside (bench, fuzz,
 * the many-sessions test): recording sessions set up and ended over one UDP socket, their INVITE
 * the one the SIPp scenario `test/sip/scenarios/siprec-uac.xml` sends (two labelled PCMU streams
 * and RFC 7865 metadata naming the caller and the agent), and RTP packets to send their audio.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMessage, parseVia, type SipResponse } from '../src/sip/message.js';
import { payloadAt, type LoadStream } from './load.js';

export interface SipTarget {
  host: string;
  port: number;
}

/** A session the node answered 200 and the client acknowledged. */
export interface SiprecSession {
  /** The SIP Call-ID (the recording's call id is `siprecCallId` of it). */
  callId: string;
  /** The RTP ports of the answer, in the offer's order: the caller's stream, then the agent's. */
  ports: number[];
  fromTag: string;
  /** The node's To header (with its tag), for the BYE. */
  to: string;
  agentId: string;
}

/** What the client's INVITE carries, for a mutator to start from. */
export interface InviteParts {
  requestUri: string;
  headers: Array<[string, string]>;
  sdp: string;
  metadata: string;
  boundary: string;
}

const T1_MS = 500;
const T2_MS = 4000;
/** Timer B / F: 64 × T1. */
const TIMEOUT_MS = 64 * T1_MS;

const SDP = (host: string) =>
  [
    'v=0',
    `o=SRC 2890844526 2890844526 IN IP4 ${host}`,
    's=-',
    `c=IN IP4 ${host}`,
    't=0 0',
    ...[1, 2].flatMap((label) => [
      `m=audio ${49168 + 2 * label} RTP/AVP 0 8 101`,
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
      `a=label:${label}`,
      'a=sendonly',
    ]),
    '',
  ].join('\r\n');

const METADATA = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
  </session>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:agent@contact-centre.example.com"><name xml:lang="en">Agent Bob</name></nameID>
  </participant>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:+15551234567@carrier.example.net"><name xml:lang="en">Alice Caller</name></nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>1</label></stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>2</label></stream>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
    <recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send>
    <recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
</recording>
`.replace(/\r?\n/g, '\r\n');

/** The parts of a recording session's INVITE from `local` to `target`. */
export function inviteParts(opts: {
  agentId: string;
  callId: string;
  fromTag: string;
  branch: string;
  local: SipTarget;
  target: SipTarget;
  transport?: 'UDP' | 'TCP';
}): InviteParts {
  const { local, target } = opts;
  const requestUri = `sip:${opts.agentId}@${target.host}:${target.port}`;
  return {
    requestUri,
    headers: [
      ['Via', `SIP/2.0/${opts.transport ?? 'UDP'} ${local.host}:${local.port};branch=${opts.branch};rport`],
      ['From', `"SBC" <sip:src@${local.host}:${local.port}>;tag=${opts.fromTag}`],
      ['To', `<${requestUri}>`],
      ['Call-ID', opts.callId],
      ['CSeq', '1 INVITE'],
      ['Contact', `<sip:src@${local.host}:${local.port}>;+sip.src`],
      ['Require', 'siprec'],
      ['Max-Forwards', '70'],
    ],
    sdp: SDP(local.host),
    metadata: METADATA,
    boundary: 'foobar',
  };
}

/** A message's text from its start line, headers and body, Content-Length computed unless a header gives one. */
export function sipMessage(startLine: string, headers: Array<[string, string]>, body: Buffer | string = ''): Buffer {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [startLine, ...headers.map(([name, value]) => `${name}: ${value}`)];
  if (!headers.some(([name]) => /^(content-length|l)$/i.test(name))) lines.push(`Content-Length: ${content.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), content]);
}

/** The INVITE as sent: its multipart/mixed body holding the SDP offer and the metadata. */
export function inviteMessage(parts: InviteParts): Buffer {
  const body = [
    `--${parts.boundary}`,
    'Content-Type: application/sdp',
    '',
    parts.sdp,
    `--${parts.boundary}`,
    'Content-Type: application/rs-metadata+xml',
    'Content-Disposition: recording-session',
    '',
    parts.metadata,
    `--${parts.boundary}--`,
    '',
  ].join('\r\n');
  return sipMessage(
    `INVITE ${parts.requestUri} SIP/2.0`,
    [...parts.headers, ['Content-Type', `multipart/mixed;boundary=${parts.boundary}`]],
    body,
  );
}

/** An RTP packet (RFC 3550 §5.1): version 2, no CSRCs, payload type `pt`. */
export function rtpPacket(seq: number, timestamp: number, ssrc: number, payload: Buffer, pt = 0): Buffer {
  const packet = Buffer.allocUnsafe(12 + payload.length);
  packet[0] = 0x80;
  packet[1] = pt & 0x7f;
  packet.writeUInt16BE(seq & 0xffff, 2);
  packet.writeUInt32BE(timestamp >>> 0, 4);
  packet.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(packet, 12);
  return packet;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

interface Pending {
  message: Buffer;
  resolve(response: SipResponse): void;
  reject(err: Error): void;
  /** INVITE: retransmission stops at the first provisional answer (RFC 3261 §17.1.1.2). */
  invite: boolean;
  timer: NodeJS.Timeout;
}

/**
 * Recording sessions over one UDP socket: each request is retransmitted (T1 doubling to T2)
 * until its final answer, matched by its Via branch; a 2xx the node retransmits (it missed the
 * ACK) is acknowledged again, and a request from the node (its BYE of an idle session) answered 200.
 */
export class SiprecClient {
  readonly local: SipTarget;
  /** The node's SIP listener. */
  readonly target: SipTarget;
  readonly #socket: dgram.Socket;
  readonly #pending = new Map<string, Pending>();
  /** The ACK of each answered session, by Call-ID, for the node's retransmitted 200s. */
  readonly #acks = new Map<string, Buffer>();

  private constructor(socket: dgram.Socket, target: SipTarget) {
    this.#socket = socket;
    this.target = target;
    this.local = { host: socket.address().address, port: socket.address().port };
    socket.on('message', (data) => this.#onMessage(data));
  }

  /** A client on a UDP socket of `localHost` (an address of this host: the SRC's, as the node sees it). */
  static async open(target: SipTarget, localHost = '127.0.0.1'): Promise<SiprecClient> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, localHost, resolve));
    return new SiprecClient(socket, target);
  }

  /** Sets up a session; resolves with it once answered 200 and acknowledged, rejects with the status of a refusal. */
  async invite(agentId: string, callId = `${hex(8)}@bench.example`): Promise<SiprecSession> {
    const branch = `z9hG4bK${hex(8)}`;
    const fromTag = hex(4);
    const invite = inviteMessage(
      inviteParts({ agentId, callId, fromTag, branch, local: this.local, target: this.target }),
    );
    const response = await this.#request(branch, invite, true);
    const to = response.headers.get('to') ?? '';
    const ackBranch = response.status < 300 ? `z9hG4bK${hex(8)}` : branch;
    const ack = sipMessage(`ACK sip:${agentId}@${this.target.host}:${this.target.port} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${this.local.host}:${this.local.port};branch=${ackBranch};rport`],
      ['From', `"SBC" <sip:src@${this.local.host}:${this.local.port}>;tag=${fromTag}`],
      ['To', to],
      ['Call-ID', callId],
      ['CSeq', '1 ACK'],
      ['Max-Forwards', '70'],
    ]);
    this.#send(ack);
    if (response.status >= 300)
      throw Object.assign(new Error(`INVITE answered ${response.status} ${response.reason}`), {
        status: response.status,
      });
    this.#acks.set(callId, ack);
    const ports = [...response.body.toString('latin1').matchAll(/^m=audio (\d+) /gm)].map((m) => Number(m[1]));
    return { callId, ports, fromTag, to, agentId };
  }

  /** Ends a session; resolves with the BYE's final status. */
  async bye(session: SiprecSession): Promise<number> {
    this.#acks.delete(session.callId);
    const branch = `z9hG4bK${hex(8)}`;
    const bye = sipMessage(`BYE sip:${session.agentId}@${this.target.host}:${this.target.port} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${this.local.host}:${this.local.port};branch=${branch};rport`],
      ['From', `"SBC" <sip:src@${this.local.host}:${this.local.port}>;tag=${session.fromTag}`],
      ['To', session.to],
      ['Call-ID', session.callId],
      ['CSeq', '2 BYE'],
      ['Max-Forwards', '70'],
    ]);
    return (await this.#request(branch, bye, false)).status;
  }

  close(): Promise<void> {
    for (const pending of this.#pending.values()) clearTimeout(pending.timer);
    this.#pending.clear();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #send(message: Buffer): void {
    this.#socket.send(message, this.target.port, this.target.host);
  }

  #request(branch: string, message: Buffer, invite: boolean): Promise<SipResponse> {
    return new Promise((resolve, reject) => {
      let interval = T1_MS;
      const deadline = performance.now() + TIMEOUT_MS;
      const retransmit = () => {
        if (performance.now() > deadline) return pending.reject(new Error('no answer'));
        this.#send(message);
        interval = Math.min(2 * interval, T2_MS);
        pending.timer = setTimeout(retransmit, interval);
      };
      const pending: Pending = {
        message,
        resolve,
        reject: (err) => {
          this.#pending.delete(branch);
          reject(new Error(`${err.message} to ${message.toString('latin1', 0, message.indexOf('\r'))}`));
        },
        invite,
        timer: setTimeout(() => {}, 0),
      };
      this.#pending.set(branch, pending);
      retransmit();
    });
  }

  #onMessage(data: Buffer): void {
    let message;
    try {
      message = parseMessage(data, false)?.message;
    } catch {
      return;
    }
    if (!message) return;
    if (message.kind === 'request') {
      // The node's BYE (or anything else it asks): 200, echoing its Via, From, To, Call-ID and CSeq.
      if (message.method === 'ACK') return;
      const echo = ['via', 'from', 'to', 'call-id', 'cseq'].flatMap((name) =>
        message.headers.getAll(name).map((value) => [name, value] as [string, string]),
      );
      return this.#send(sipMessage('SIP/2.0 200 OK', echo));
    }
    const branch = parseVia(message.headers.getAll('via')[0] ?? '')?.params.get('branch') ?? '';
    const pending = this.#pending.get(branch);
    if (!pending) {
      // A 2xx the node resends because our ACK went missing.
      const ack = message.status < 300 ? this.#acks.get(message.headers.get('call-id') ?? '') : undefined;
      if (ack) this.#send(ack);
      return;
    }
    if (message.status < 200) {
      if (!pending.invite) return;
      // Proceeding: no more retransmissions, and the final answer may take until Timer B.
      clearTimeout(pending.timer);
      pending.timer = setTimeout(() => pending.reject(new Error('no final answer')), TIMEOUT_MS);
      return;
    }
    clearTimeout(pending.timer);
    this.#pending.delete(branch);
    pending.resolve(message);
  }
}

/** RTP sockets a SIPREC load sends from: a few shared by every stream (a port each would be 400 for 200 sessions). */
const RTP_SOCKETS = 4;

/**
 * SIPREC sessions as the load generator's calls (`runLoad`): each call is a recording session
 * set up by `client` for the agent in its `agent_id` parameter, its Call-ID the call id; its
 * frames are one RTP packet per participant per tick (PCMU, 20 ms, the same audio as every
 * other load's, `payloadAt`), to the ports the node answered; hanging up is the BYE (1000 when
 * answered 200). The packets are built once per tick and sent to every session.
 */
export async function siprecStream(client: SiprecClient): Promise<LoadStream & { close(): Promise<void> }> {
  const sockets = await Promise.all(
    Array.from({ length: RTP_SOCKETS }, async () => {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      return socket;
    }),
  );
  let next = 0;
  return {
    url: (base) => base,
    start: () => [],
    frames: (tick) => {
      const payload = Buffer.from(payloadAt(tick), 'base64');
      return [0x1111, 0x2222].map((ssrc) => ({
        data: rtpPacket(tick, tick * payload.length, ssrc, payload),
        binary: true,
      }));
    },
    stop: null,
    async connect(_url, callId, params) {
      const session = await client.invite(params.agent_id, callId);
      const socket = sockets[next++ % sockets.length];
      let open = true;
      let resolveClosed!: (code: number) => void;
      const closed = new Promise<number>((resolve) => (resolveClosed = resolve));
      return {
        get open() {
          return open;
        },
        send(frames) {
          for (let i = 0; i < frames.length; i++) socket.send(frames[i].data, session.ports[i], client.target.host);
        },
        hangUp() {
          open = false;
          // The BYE after the session's last packets have left this process (the node drops
          // what it reads after the BYE: the SRC has said the media ended).
          const bye = async () => {
            while (socket.getSendQueueCount() > 0) await sleep(5);
            return client.bye(session);
          };
          bye().then(
            (status) => resolveClosed(status === 200 ? 1000 : status),
            () => resolveClosed(1006),
          );
        },
        closed,
        terminate: () => resolveClosed(1006),
      };
    },
    close: () =>
      Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => {}),
  };
}

/** The node's `callrec_frames_total{provider="siprec"}`: the RTP packets its SIPREC sessions took. */
export async function siprecFrames(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(/^callrec_frames_total\{provider="siprec"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/**
 * Waits (`timeoutMs` at most) until the node at `baseUrl` has counted `frames` SIPREC frames
 * (`siprecFrames`, which a session adds to once a second): every packet sent has been read, and
 * a BYE now ends nothing early.
 */
export async function siprecFramesCounted(baseUrl: string, frames: number, timeoutMs = 60_000): Promise<void> {
  for (const deadline = performance.now() + timeoutMs; performance.now() < deadline; await sleep(200))
    if ((await siprecFrames(baseUrl)) >= frames) return;
}
