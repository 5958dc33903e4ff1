/**
 * The fuzzer's SIP and RTP cases, against a node listening for SIPREC (`SIP_LISTEN`): mutated
 * requests over UDP and TCP (each from a socket of its own), and mutated RTP/RTCP bursts at the
 * ports of a session set up for the case. A request the node's own parser refuses must be
 * answered 400 or dropped; no request may be answered a 5xx other than 503 (the node's refusal
 * under load); a session must end on its BYE.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_SIP_MESSAGE_BYTES, parseMessage, parseCSeq, type SipResponse } from '../src/sip/message.js';
import { TORTURE, wire } from '../test/sip/fixtures/rfc4475.js';
import { between, type Random } from './mutate.js';
import { mutateRtp, mutateSip, strayRequest, type SipMutation } from './mutate-sip.js';
import { inviteParts, type SiprecClient, type SipTarget, sipMessage } from './siprec-client.js';
import { payloadAt } from './load.js';

/** The address SIP cases come from: the fuzzed tenant's `sip_sources` (the neighbour's is 127.0.0.1). */
export const FUZZ_SIP_SOURCE = '127.0.0.2';
/** How long a SIP case waits for a final answer after its last message or provisional answer, ms. */
const ANSWER_MS = 1500;

const TORTURE_WIRE = TORTURE.map(wire);

export type SipCase =
  | { kind: 'sip'; transport: 'udp' | 'tcp'; mutation: SipMutation; malformed: boolean }
  | { kind: 'rtp'; agentId: string; callId: string; streams: Array<{ names: string[]; packets: Buffer[] }> };

/** Case `n`'s SIP input: a mutated request (over UDP or TCP), or an RTP burst at a session of its own. */
export function buildSipCase(random: Random, agentId: string, callId: string, sip: SipTarget): SipCase {
  if (random() < 0.25) {
    const payload = (i: number) => Buffer.from(payloadAt(i), 'base64');
    const count = between(random, 10, 150);
    return {
      kind: 'rtp',
      agentId,
      callId,
      streams: [0x1111, 0x2222].map((ssrc) => mutateRtp(count, ssrc, payload, random)),
    };
  }
  const parts = inviteParts({
    agentId,
    callId,
    fromTag: `f${between(random, 0, 1e9)}`,
    branch: `z9hG4bK${between(random, 0, 1e9)}`,
    local: { host: FUZZ_SIP_SOURCE, port: 5060 },
    target: sip,
    transport: random() < 0.5 ? 'UDP' : 'TCP',
  });
  const transport = parts.headers[0][1].startsWith('SIP/2.0/UDP') ? 'udp' : 'tcp';
  const mutation =
    random() < 0.1
      ? strayRequest(random, parts.requestUri, parts.headers.slice(0, 5))
      : mutateSip(parts, TORTURE_WIRE, random);
  let malformed = false;
  try {
    parseMessage(mutation.data, transport === 'tcp');
  } catch {
    malformed = true;
  }
  // A datagram past the limit is cut by the network, not by the node: it is sent over TCP.
  return {
    kind: 'sip',
    transport: mutation.data.length > MAX_SIP_MESSAGE_BYTES ? 'tcp' : transport,
    mutation,
    malformed,
  };
}

export function describeSipCase(c: SipCase, clip: (text: string, max?: number) => string): string {
  if (c.kind === 'rtp')
    return `RTP at a session of its own (${c.callId}), mutations ${c.streams.map((s) => s.names.join('+') || 'none').join(' / ')}, ${c.streams[0].packets.length} packets each`;
  return `SIP over ${c.transport}${c.malformed ? ' (malformed)' : ''}, mutations ${c.mutation.names.join(', ')}\n${clip(c.mutation.data.toString('latin1'), 3000)}`;
}

/** Sends the case; resolves with its outcome (`sip 400`, `sip none`, `rtp 200/200`…). */
export async function runSipCase(c: SipCase, sip: SipTarget, client: SiprecClient): Promise<string> {
  if (c.kind === 'rtp') return runRtp(c, client);
  const answers = c.transport === 'udp' ? await overUdp(c.mutation.data, sip) : await overTcp(c.mutation.data, sip);
  const final = answers.find((a) => a.status >= 200);
  return final ? `sip ${final.status}` : c.transport === 'tcp' && answers.closed ? 'sip closed' : 'sip none';
}

/** What is wrong with a SIP case's outcome, or null. */
export function sipProblem(c: SipCase, outcome: string): string | null {
  if (c.kind === 'rtp') {
    const [invite, bye] = outcome.slice(4).split('/');
    if (/^5/.test(invite) && invite !== '503') return `the INVITE was answered ${invite}`;
    if (invite === '200' && bye !== '200') return `the session's BYE was answered ${bye}`;
    return null;
  }
  const status = /^sip (\d+)$/.exec(outcome)?.[1];
  if (status === undefined) return null;
  if (c.malformed && status !== '400') return `a malformed request was answered ${status}, not 400 or dropped`;
  return status.startsWith('5') && status !== '503' ? `answered ${status}` : null;
}

/** Answers to one request: every response read, and (TCP) whether the node closed the connection. */
type Answers = SipResponse[] & { closed?: boolean };

/** Waits for the answers to come in: until a final one, or `ANSWER_MS` without one after the last. */
function collect(onMessage: (take: (data: Buffer, stream: boolean) => number) => void): Promise<Answers> {
  return new Promise((resolve) => {
    const answers: Answers = [];
    let timer = setTimeout(() => resolve(answers), ANSWER_MS);
    onMessage((data, stream) => {
      let parsed;
      try {
        parsed = parseMessage(data, stream);
      } catch {
        return -1;
      }
      if (!parsed) return 0;
      if (parsed.message.kind === 'response') {
        answers.push(parsed.message);
        clearTimeout(timer);
        if (parsed.message.status >= 200) resolve(answers);
        else timer = setTimeout(() => resolve(answers), ANSWER_MS);
      }
      return parsed.length;
    });
  });
}

async function overUdp(data: Buffer, sip: SipTarget): Promise<Answers> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, FUZZ_SIP_SOURCE, resolve));
  try {
    const answers = collect((take) => socket.on('message', (datagram) => take(datagram, false)));
    socket.send(data, sip.port, sip.host);
    const got = await answers;
    const ok = got.find(
      (a) => a.status >= 200 && a.status < 300 && parseCSeq(a.headers.get('cseq'))?.method === 'INVITE',
    );
    // A mutated INVITE the node took: its session ends here rather than at the idle timeout.
    if (ok) socket.send(byeFor(ok), sip.port, sip.host);
    await sleep(50);
    return got;
  } finally {
    socket.close();
  }
}

async function overTcp(data: Buffer, sip: SipTarget): Promise<Answers> {
  const socket = net.connect({ host: sip.host, port: sip.port, localAddress: FUZZ_SIP_SOURCE });
  socket.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    let closed = false;
    let pending = Buffer.alloc(0);
    const answers = collect((take) =>
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (let used = take(pending, true); used > 0; used = take(pending, true)) pending = pending.subarray(used);
      }),
    );
    socket.once('close', () => (closed = true));
    socket.write(data);
    const got = await answers;
    const ok = got.find(
      (a) => a.status >= 200 && a.status < 300 && parseCSeq(a.headers.get('cseq'))?.method === 'INVITE',
    );
    if (ok && !closed) socket.write(byeFor(ok));
    await sleep(50);
    return Object.assign(got, { closed });
  } finally {
    socket.destroy();
  }
}

/** A BYE for the dialog a 200 to an INVITE made. */
function byeFor(ok: SipResponse): Buffer {
  const header = (name: string) => ok.headers.get(name) ?? '';
  return sipMessage('BYE sip:fuzz@127.0.0.1 SIP/2.0', [
    ['Via', `SIP/2.0/UDP ${FUZZ_SIP_SOURCE}:5060;branch=z9hG4bKbye${Date.now()};rport`],
    ['From', header('from')],
    ['To', header('to')],
    ['Call-ID', header('call-id')],
    ['CSeq', '2 BYE'],
    ['Max-Forwards', '70'],
  ]);
}

/** A session of its own, both its streams' bursts at its ports (a few packets at a time), its BYE. */
async function runRtp(c: Extract<SipCase, { kind: 'rtp' }>, client: SiprecClient): Promise<string> {
  let session;
  try {
    session = await client.invite(c.agentId, c.callId);
  } catch (err) {
    return `rtp ${(err as { status?: number }).status ?? 'none'}/-`;
  }
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, FUZZ_SIP_SOURCE, resolve));
  try {
    const longest = Math.max(...c.streams.map((s) => s.packets.length));
    for (let i = 0; i < longest; i++) {
      c.streams.forEach((stream, s) => {
        if (stream.packets[i]) socket.send(stream.packets[i], session.ports[s], client.target.host);
      });
      if (i % 10 === 9) await sleep(5);
    }
    while (socket.getSendQueueCount() > 0) await sleep(5);
  } finally {
    socket.close();
  }
  const bye = await client.bye(session).catch(() => 'none');
  return `rtp 200/${bye}`;
}
