import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encoderFor } from '../../media/codec.js';
import { siprecCallId } from '../../src/sip/siprec.js';
import { decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';
import { closedPort } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * SIPp (Debian `sip-tester`) is the SIPREC client; the test sends the RTP of both
 * participants from Node sockets to the ports the 200's SDP answered, while SIPp pauses.
 */

const SCENARIOS = path.join(import.meta.dirname, '../sip/scenarios');
const FREQ = { caller: 1000, agent: 1500 } as const;
/** Tone bursts per leg, ms. The agent's SSRC changes at 1500 ms, between its bursts. */
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
let sipPort: number;
let tcpPort: number;
let tmp: string;
beforeAll(async () => {
  // A range of its own, so parallel runs seldom meet (a port in use is skipped anyway).
  const first = 30_000 + 2 * Math.floor(Math.random() * 4_000);
  // On PostgreSQL: setting a session up then waits on the network, as in production, so the CANCEL
  // sent on the 100 Trying arrives before the answer. On SQLite (synchronous underneath) the whole
  // set-up ran within one turn of the event loop and the answer always won that race.
  ts = await startTestServer({
    db: 'postgres',
    env: { SIP_LISTEN: 'udp:127.0.0.1:0,tcp:127.0.0.1:0', RTP_PORTS: `${first}-${first + 99}` },
  });
  const addresses = ts.server.siprec!.transport.addresses();
  sipPort = addresses.find((a) => a.protocol === 'udp')!.port;
  tcpPort = addresses.find((a) => a.protocol === 'tcp')!.port;
  // The tenant's SBC: this host only (127.0.0.2 is then a stranger).
  const res = await ts.api(`/api/tenants/${ts.tenantId}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sip_sources: ['127.0.0.1'] }),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { sip_sources: string[] }).sip_sources).toEqual(['127.0.0.1/32']);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-sipp-'));
});
afterAll(async () => {
  await ts?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

interface SippRun {
  /** Resolves with SIPp's exit code (0: every call of the scenario went as written). */
  exit: Promise<number>;
  messages: string;
}

/** Runs one call of a scenario against the server; `messages` is SIPp's message log. */
async function sipp(
  scenario: string,
  opts: { agent?: string; address?: string; tcp?: boolean } = {},
): Promise<SippRun> {
  const messages = path.join(tmp, `${scenario}-${Date.now()}.log`);
  const port = opts.tcp ? tcpPort : sipPort;
  const args = [
    `127.0.0.1:${port}`,
    '-sf',
    path.join(SCENARIOS, `${scenario}.xml`),
    '-m',
    '1',
    '-i',
    opts.address ?? '127.0.0.1',
    '-p',
    String(await closedPort()),
    '-key',
    'agent',
    opts.agent ?? 'nobody',
  ];
  args.push(
    '-t',
    opts.tcp ? 't1' : 'u1',
    '-trace_msg',
    '-message_file',
    messages,
    '-nostdin',
    '-timeout',
    '30s',
    '-timeout_error',
  );
  const child = spawn('sipp', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exit = new Promise<number>((resolve) =>
    child.on('exit', (code) => {
      if (code !== 0)
        void fs.readFile(messages, 'utf8').then(
          (log) => console.error(`sipp ${scenario} exited ${code}: ${stderr}\n${log}`),
          () => {},
        );
      resolve(code ?? -1);
    }),
  );
  return { exit, messages };
}

/** Waits for SIPp's log to hold the 200 to its INVITE; returns that message. */
async function answer(run: SippRun): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const log = await fs.readFile(run.messages, 'utf8').catch(() => '');
    const ok =
      /SIP\/2\.0 200 OK\r?\n(?:(?!\r?\n\r?\n)[\s\S])*CSeq: 1 INVITE[\s\S]*?\r?\n\r?\n[\s\S]*?a=recvonly[\s\S]*?a=recvonly\r?\n/.exec(
        log,
      );
    if (ok) return ok[0];
    await sleep(25);
  }
  throw new Error("no 200 to the INVITE in SIPp's log");
}

/** An RTP packet: PCMU (0), 20 ms. */
function rtp(seq: number, timestamp: number, ssrc: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = 0;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}

/** One leg's packets in send order: a lost one, a duplicate, a swapped pair; `ssrcChangeAt` re-originates the stream. */
function legPackets(leg: 'caller' | 'agent', ssrcChangeAt?: number): Buffer[] {
  const pcm = synthesizeTones(
    8000,
    1,
    SECONDS,
    BURSTS[leg].map(([from, to]) => [0, FREQ[leg], from, to] as const),
  );
  const encode = encoderFor({ codec: 'pcmu', sampleRate: 8000 });
  const packets: Buffer[] = [];
  for (let i = 0; i < (SECONDS * 8000) / FRAME; i++) {
    const payload = encode(pcm.subarray(i * FRAME, (i + 1) * FRAME));
    const second = ssrcChangeAt !== undefined && i >= ssrcChangeAt;
    // Timestamps near the 32-bit wrap on the first SSRC; a fresh random base on the second.
    packets.push(
      second
        ? rtp(9000 + i, 123_456 + (i - ssrcChangeAt) * FRAME, 0xbeef, payload)
        : rtp(60_000 + i, 0xffff_f000 + i * FRAME, leg === 'caller' ? 0x1111 : 0x2222, payload),
    );
  }
  // Loss in a silent stretch (silence either way), a duplicate, and a swapped pair.
  packets.splice(5, 1);
  packets.splice(20, 0, packets[20]);
  [packets[30], packets[31]] = [packets[31], packets[30]];
  return packets;
}

test.each(['udp', 'tcp'])(
  'a SIPREC session from SIPp over %s records both participants: onsets within 1 ms on their channels, through reordering, loss, a duplicate and an SSRC change',
  async (transport) => {
    const agentId = `agent-sip-${transport}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      dual_channel: true,
    });
    const run = await sipp('siprec-uac', { agent: agentId, tcp: transport === 'tcp' });
    const ok = await answer(run);
    const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
    const ports = [...ok.matchAll(/m=audio (\d+) RTP\/AVP 0 101/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(2);
    expect(ok).toMatch(/a=label:1/);

    // The first stream (label 1) is Alice's, the caller's, though the metadata lists her second.
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const send = (packet: Buffer, port: number) =>
      new Promise<void>((resolve, reject) =>
        socket.send(packet, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      );
    const caller = legPackets('caller');
    const agent = legPackets('agent', 75);
    // Both streams' first packets together: they set the streams' alignment.
    await Promise.all([send(caller[0], ports[0]), send(agent[0], ports[1])]);
    for (let i = 1; i < Math.max(caller.length, agent.length); i++) {
      if (caller[i]) await send(caller[i], ports[0]);
      if (agent[i]) await send(agent[i], ports[1]);
      if (i % 10 === 0) await sleep(1);
    }
    socket.close();
    expect(await run.exit).toBe(0);

    const rec = await ts.recording(callId);
    expect(rec).toMatchObject({ status: 'ready', format: 'wav', channels: 2 });
    const call = await (await ts.api(`/api/calls/${callId}`)).json();
    expect(call).toMatchObject({ provider: 'siprec', mode: 'fork', agent_id: agentId });
    // The metadata lists the agent first; the caller is who sends the first stream.
    expect((call as { participants: unknown }).participants).toEqual([
      { id: 'zSfPoSvdSDCmU3A3TRDxAw==', aor: 'sip:agent@contact-centre.example.com', name: 'Agent Bob', leg: 'agent' },
      {
        id: 'srfBElmCRp2QB23b7Mpk0w==',
        aor: 'sip:+15551234567@carrier.example.net',
        name: 'Alice Caller',
        leg: 'caller',
      },
    ]);
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
      'wav',
    );
    for (const [leg, channel] of [
      ['caller', 0],
      ['agent', 1],
    ] as const) {
      const found = findBursts(audio.channels[channel], audio.sampleRate, FREQ[leg]);
      expect(found).toHaveLength(BURSTS[leg].length);
      BURSTS[leg].forEach(([from, to], i) => {
        expect(Math.abs(found[i].startMs - from)).toBeLessThanOrEqual(1);
        expect(Math.abs(found[i].endMs - to)).toBeLessThanOrEqual(1);
      });
      expect(findBursts(audio.channels[1 - channel], audio.sampleRate, FREQ[leg])).toEqual([]);
    }
  },
  60_000,
);

test('OPTIONS is answered 200 over UDP and TCP', async () => {
  expect(await (await sipp('options')).exit).toBe(0);
  expect(await (await sipp('options', { tcp: true })).exit).toBe(0);
  const metrics = await (await fetch(`${ts.server.url}/metrics`)).text();
  expect(metrics).toMatch(/^callrec_sip_requests_total\{method="OPTIONS",status="200"\} 2$/m);
  expect(metrics).toMatch(/^callrec_sip_requests_total\{method="INVITE",status="200"\} 2$/m);
});

test('a CANCEL before the answer: 200 to the CANCEL, 487 to the INVITE, nothing recorded', async () => {
  const agentId = 'agent-sip-cancel';
  await ts.agent(agentId, { enabled: true, auto_record: true, consent_prompt: false });
  const run = await sipp('cancel', { agent: agentId });
  expect(await run.exit).toBe(0);
  const log = await fs.readFile(run.messages, 'utf8');
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(log)![1]);
  expect(await ts.server.store.recordings.getByCall(ts.tenantId, callId)).toBeNull();
});

test('a source no tenant lists, without credentials, is challenged 401 and nothing is recorded', async () => {
  const agentId = 'agent-sip-stranger';
  await ts.agent(agentId, { enabled: true, auto_record: true, consent_prompt: false });
  const run = await sipp('refused', { agent: agentId, address: '127.0.0.2' });
  expect(await run.exit).toBe(0);
  const log = await fs.readFile(run.messages, 'utf8');
  expect(log).toMatch(/SIP\/2\.0 401 Unauthorized\r?\n[\s\S]*WWW-Authenticate: Digest realm="callrec"/);
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(log)![1]);
  expect((await ts.api(`/api/calls/${callId}`)).status).toBe(404);
});
