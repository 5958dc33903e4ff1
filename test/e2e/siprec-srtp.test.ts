import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { encoderFor } from '../../media/codec.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';
import { senderReport } from '../helpers/rtcp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SrtpProtector } from '../helpers/srtp.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/*
 * A SIPREC session whose SIP goes over TLS (a client written here: Debian's SIPp is built
 * without TLS) and whose RTP is SDES-SRTP, protected by the test's own SRTP sender
 * (test/helpers/srtp.ts), through loss, reordering, replays, a sequence-number wrap and forged
 * packets. (An SSRC change is test/e2e/siprec.test.ts's; test/sip/srtp.test.ts checks that a
 * second SSRC gets a rollover counter of its own.)
 */

const FREQ = { caller: 1000, agent: 1500 } as const;
const BURSTS = {
  caller: [
    [200, 600],
    [1200, 1500],
  ],
  agent: [
    [700, 1100],
    [1700, 2300],
  ],
} as const;
const SECONDS = 3;
const FRAME = 160;

let ts: TestServer;
let tlsPort: number;
let certificate: Awaited<ReturnType<typeof selfSignedCertificate>>;
beforeAll(async () => {
  certificate = await selfSignedCertificate();
  const first = 30_000 + 2 * Math.floor(Math.random() * 4_000);
  ts = await startTestServer({
    env: {
      SIP_LISTEN: 'tls:127.0.0.1:0',
      SIP_TLS_CERT: certificate.certFile,
      SIP_TLS_KEY: certificate.keyFile,
      RTP_PORTS: `${first}-${first + 99}`,
    },
  });
  tlsPort = ts.server.siprec!.transport.addresses()[0].port;
  await ts.server.store.tenants.updateSettings(ts.tenantId, (current) => ({
    ...current,
    sip_sources: ['127.0.0.1/32'],
  }));
});
afterAll(async () => {
  await ts?.close();
  await certificate?.remove();
});

/** A SIP client on a TLS connection that trusts only the test's certificate; messages framed by Content-Length. */
async function tlsClient() {
  const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: certificate.cert });
  await once(socket, 'secureConnect');
  const received: SipMessage[] = [];
  const waiters: (() => void)[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (let parsed = parseMessage(pending, true); parsed; parsed = parseMessage(pending, true)) {
      received.push(parsed.message);
      pending = pending.subarray(parsed.length);
    }
    for (const w of waiters.splice(0)) w();
  });
  const local = `127.0.0.1:${socket.localPort}`;
  const callId = `srtp-${randomBytes(4).toString('hex')}`;
  return {
    callId,
    send(method: string, agent: string, opts: { cseq?: number; toTag?: string; body?: string } = {}) {
      const body = (opts.body ?? '').replace(/\n/g, '\r\n');
      socket.write(
        [
          `${method} sips:${agent}@127.0.0.1:${tlsPort} SIP/2.0`,
          `Via: SIP/2.0/TLS ${local};branch=z9hG4bK${randomBytes(6).toString('hex')}`,
          `From: <sips:src@${local}>;tag=src`,
          `To: <sips:${agent}@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
          `Call-ID: ${callId}`,
          `CSeq: ${opts.cseq ?? 1} ${method}`,
          `Contact: <sips:src@${local}>;+sip.src`,
          'Require: siprec',
          'Max-Forwards: 70',
          ...(body ? ['Content-Type: application/sdp'] : []),
          `Content-Length: ${Buffer.byteLength(body)}`,
          '',
          body,
        ].join('\r\n'),
      );
    },
    async next(code: number, method: string): Promise<SipMessage> {
      for (;;) {
        const found = received.find(
          (m) => m.kind === 'response' && m.status === code && m.headers.get('cseq')!.endsWith(method),
        );
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close: () => socket.destroy(),
  };
}

function rtp(seq: number, timestamp: number, ssrc: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}

/**
 * One leg's SRTP packets in send order. Sequence numbers start just below the wrap (the rollover
 * counter goes to 1 within the call), timestamps just below theirs. One packet is lost, one replayed, a pair swapped; and three packets at 2600 ms come first as
 * forgeries carrying the other leg's tone under a wrong tag: accepted, they would add a burst.
 */
function legPackets(leg: 'caller' | 'agent', protector: SrtpProtector): Buffer[] {
  const pcm = synthesizeTones(
    8000,
    1,
    SECONDS,
    BURSTS[leg].map(([from, to]) => [0, FREQ[leg], from, to] as const),
  );
  const forged = synthesizeTones(8000, 1, 0.06, [[0, FREQ[leg], 0, 60]]);
  const encode = encoderFor({ codec: 'pcmu', sampleRate: 8000 });
  const firstSeq = leg === 'caller' ? 65_500 : 65_530;
  const packets: Buffer[] = [];
  for (let i = 0; i < (SECONDS * 8000) / FRAME; i++) {
    const index = firstSeq + i;
    const header = (payload: Buffer) =>
      rtp(index, 0xffff_f000 + i * FRAME, leg === 'caller' ? 0x1111 : 0x2222, payload);
    const roc = Math.floor(index / 65536);
    if (i >= 130 && i < 133) {
      const fake = protector.protect(header(encode(forged.subarray((i - 130) * FRAME, (i - 129) * FRAME))), roc);
      fake[fake.length - 1] ^= 0x01;
      packets.push(fake);
    }
    packets.push(protector.protect(header(encode(pcm.subarray(i * FRAME, (i + 1) * FRAME))), roc));
  }
  packets.splice(5, 1);
  packets.splice(20, 0, packets[20]);
  [packets[30], packets[31]] = [packets[31], packets[30]];
  return packets;
}

/**
 * An SRTP session over TLS with two streams (the caller's under an 80-bit tag, the agent's under a
 * 32-bit one), answered and ACKed; `send` sends a datagram to an answered port.
 */
async function srtpSession(agentId: string) {
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const keys = { caller: randomBytes(30), agent: randomBytes(30) };
  const stream = (label: number, port: number, crypto: string) =>
    `m=audio ${port} RTP/SAVP 0 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n${crypto}a=label:${label}\na=sendonly\n`;
  const client = await tlsClient();
  client.send('INVITE', agentId, {
    body:
      'v=0\no=SRC 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n' +
      stream(1, 49170, `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${keys.caller.toString('base64')}|2^31\n`) +
      stream(
        2,
        49172,
        `a=crypto:1 AEAD_AES_128_GCM inline:${randomBytes(28).toString('base64')}\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:${keys.agent.toString('base64')}\n`,
      ),
  });
  const ok = await client.next(200, 'INVITE');
  const sdp = ok.body.toString();
  const answered = [
    ...sdp.matchAll(/^m=audio (\d+) RTP\/SAVP 0 101\r\n(?:(?!m=)[\s\S])*?a=crypto:(\d) (\S+) inline:(\S+)\r$/gm),
  ];
  const ports = answered.map((m) => Number(m[1]));
  const toTag = /tag=(\w+)/.exec(ok.headers.get('to')!)![1];
  client.send('ACK', agentId, { toTag });
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const send = (packet: Buffer, port: number) =>
    new Promise<void>((resolve, reject) =>
      socket.send(packet, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  const protectors = { caller: new SrtpProtector(keys.caller, 80), agent: new SrtpProtector(keys.agent, 32) };
  return { client, ok, answered, keys, ports, toTag, send, protectors, closeRtp: () => socket.close() };
}

/** The recording's tone bursts of each leg on its channel (and none on the other). */
async function recordedBursts(callId: string) {
  const audio = await decodeAudio(
    new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
    'wav',
  );
  const found = {
    caller: findBursts(audio.channels[0], audio.sampleRate, FREQ.caller),
    agent: findBursts(audio.channels[1], audio.sampleRate, FREQ.agent),
  };
  expect(findBursts(audio.channels[1], audio.sampleRate, FREQ.caller)).toEqual([]);
  expect(findBursts(audio.channels[0], audio.sampleRate, FREQ.agent)).toEqual([]);
  return found;
}

test('a SIPREC session over TLS with SDES-SRTP media records both participants: onsets within 1 ms on their channels, through a sequence wrap, loss, reordering, replays and forged packets', async () => {
  const agentId = 'agent-srtp';
  const { client, ok, answered, keys, ports, toTag, send, protectors, closeRtp } = await srtpSession(agentId);
  // The INVITE was for a SIPS URI: so is the Contact (RFC 3261 §12.1.1).
  expect(ok.headers.get('contact')).toBe(`<sips:127.0.0.1:${tlsPort}>;+sip.srs`);
  expect(answered.map((m) => [m[2], m[3]])).toEqual([
    ['1', 'AES_CM_128_HMAC_SHA1_80'],
    ['2', 'AES_CM_128_HMAC_SHA1_32'],
  ]);
  // callrec's own keys: fresh, not the SRC's.
  for (const m of answered) expect(Buffer.from(m[4], 'base64')).toHaveLength(30);
  expect(answered.map((m) => m[4])).not.toContain(keys.caller.toString('base64'));

  const caller = legPackets('caller', protectors.caller);
  const agent = legPackets('agent', protectors.agent);
  // Both streams' first packets together, alone, once the ACK's work is done: when they are
  // handled sets the streams' alignment (within 20 ms of each other: together).
  await sleep(300);
  await Promise.all([send(caller[0], ports[0]), send(agent[0], ports[1])]);
  await sleep(20);
  for (let i = 1; i < Math.max(caller.length, agent.length); i++) {
    if (caller[i]) await send(caller[i], ports[0]);
    if (agent[i]) await send(agent[i], ports[1]);
    // Jitter: bursts of packets, then short gaps (the send runs ahead of real time, as a buffered SBC's may).
    if (i % 10 === 0) await sleep(1);
  }
  closeRtp();
  // Let the last datagrams arrive before the BYE finalizes the recording.
  await sleep(200);
  client.send('BYE', agentId, { cseq: 2, toTag });
  await client.next(200, 'BYE');
  client.close();

  const rec = await ts.recording(client.callId);
  expect(rec).toMatchObject({ status: 'ready', format: 'wav', channels: 2 });
  const found = await recordedBursts(client.callId);
  for (const leg of ['caller', 'agent'] as const) {
    expect(found[leg]).toHaveLength(BURSTS[leg].length);
    BURSTS[leg].forEach(([from, to], i) => {
      expect(Math.abs(found[leg][i].startMs - from)).toBeLessThanOrEqual(1);
      expect(Math.abs(found[leg][i].endMs - to)).toBeLessThanOrEqual(1);
    });
  }
}, 60_000);

test('SRTCP sender reports align SRTP streams whose first packets arrive 250 ms apart; a forged report is dropped', async () => {
  const agentId = 'agent-srtcp';
  const { client, ports, toTag, send, protectors, closeRtp } = await srtpSession(agentId);
  const caller = legPackets('caller', protectors.caller);
  const agent = legPackets('agent', protectors.agent);
  await sleep(300);
  await send(caller[0], ports[0]);
  await sleep(250);
  await send(agent[0], ports[1]);
  // Both first packets (timestamp 0xfffff000) were sampled at one NTP instant. A forgery first,
  // on the agent's RTCP port: it says 400 ms later, and would shift the agent by that if taken.
  const ntp = 3_900_000_000.5;
  const forged = protectors.agent.protectRtcp(senderReport(0x2222, ntp + 0.4, 0xffff_f000), 1);
  forged[forged.length - 1] ^= 1;
  await send(forged, ports[1] + 1);
  await send(protectors.caller.protectRtcp(senderReport(0x1111, ntp, 0xffff_f000), 1), ports[0] + 1);
  // Multiplexed on the agent's RTP port (RFC 5761).
  await send(protectors.agent.protectRtcp(senderReport(0x2222, ntp, 0xffff_f000), 2), ports[1]);
  await sleep(20);
  for (let i = 1; i < Math.max(caller.length, agent.length); i++) {
    if (caller[i]) await send(caller[i], ports[0]);
    if (agent[i]) await send(agent[i], ports[1]);
    if (i % 10 === 0) await sleep(1);
  }
  closeRtp();
  await sleep(200);
  client.send('BYE', agentId, { cseq: 2, toTag });
  await client.next(200, 'BYE');
  client.close();

  await ts.recording(client.callId);
  const found = await recordedBursts(client.callId);
  // The caller, whose audio arrived first, was delayed by the agent's lateness (about 250 ms as
  // this process measured it); both legs by exactly as much: the reports aligned them.
  const shift = found.caller[0].startMs - BURSTS.caller[0][0];
  expect(shift).toBeGreaterThan(100);
  for (const leg of ['caller', 'agent'] as const) {
    expect(found[leg]).toHaveLength(BURSTS[leg].length);
    BURSTS[leg].forEach(([from, to], i) => {
      expect(Math.abs(found[leg][i].startMs - from - shift)).toBeLessThanOrEqual(1);
      expect(Math.abs(found[leg][i].endMs - to - shift)).toBeLessThanOrEqual(1);
    });
  }
}, 60_000);

test('RTP sent just before the BYE and arriving after it is recorded; the BYE is answered at once, and a request after it is 481', async () => {
  const agentId = 'agent-srtp-bye';
  const { client, ports, toTag, send, protectors, closeRtp } = await srtpSession(agentId);
  const caller = legPackets('caller', protectors.caller);
  const agent = legPackets('agent', protectors.agent);
  await sleep(300);
  await Promise.all([send(caller[0], ports[0]), send(agent[0], ports[1])]);
  await sleep(20);
  // Everything up to 1.6 s before the BYE; the agent's last burst (1700-2300 ms) and the rest
  // after its 200: in flight when the SRC hung up.
  const sendFrom = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      if (caller[i]) await send(caller[i], ports[0]);
      if (agent[i]) await send(agent[i], ports[1]);
      if (i % 10 === 0) await sleep(1);
    }
  };
  await sendFrom(1, 80);
  await sleep(100);
  client.send('BYE', agentId, { cseq: 2, toTag });
  await client.next(200, 'BYE');
  await sendFrom(80, Math.max(caller.length, agent.length));
  closeRtp();
  client.send('UPDATE', agentId, { cseq: 3, toTag });
  await client.next(481, 'UPDATE');
  client.close();

  await ts.recording(client.callId);
  const found = await recordedBursts(client.callId);
  for (const leg of ['caller', 'agent'] as const) {
    expect(found[leg]).toHaveLength(BURSTS[leg].length);
    BURSTS[leg].forEach(([from, to], i) => {
      expect(Math.abs(found[leg][i].startMs - from)).toBeLessThanOrEqual(1);
      expect(Math.abs(found[leg][i].endMs - to)).toBeLessThanOrEqual(1);
    });
  }
}, 60_000);

test('a client that does not speak TLS on the tls: port is disconnected, and the listener takes the next one', async () => {
  const plain = net.connect(tlsPort, '127.0.0.1');
  await once(plain, 'connect');
  plain.write('OPTIONS sip:callrec@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n');
  // The server resets it when the handshake fails.
  plain.on('error', () => {});
  let answered = '';
  plain.on('data', (chunk: Buffer) => (answered += chunk.toString('latin1')));
  await new Promise((resolve) => plain.on('close', resolve));
  expect(answered).not.toMatch(/SIP\/2\.0/);
  const client = await tlsClient();
  client.send('OPTIONS', 'callrec');
  expect(await client.next(200, 'OPTIONS')).toMatchObject({ kind: 'response', status: 200 });
  client.close();
});
