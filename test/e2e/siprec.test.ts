import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import opus from '@discordjs/opus';
import { encoderFor } from '../../media/codec.js';
import { G722Encoder } from '../../media/g722.js';
import { siprecCallId } from '../../src/sip/siprec.js';
import { decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';
import { closedPort } from '../helpers/cli.js';
import { senderReport } from '../helpers/rtcp.js';
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
    // SIP_MIN_SE under RFC 4028's 90 s: the session-timer scenarios run in seconds.
    env: { SIP_LISTEN: 'udp:127.0.0.1:0,tcp:127.0.0.1:0', RTP_PORTS: `${first}-${first + 99}`, SIP_MIN_SE: '2' },
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
  opts: {
    agent?: string;
    address?: string;
    tcp?: boolean;
    codec?: { pt: number; rtpmap: string };
    keys?: Record<string, string>;
  } = {},
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
    '-key',
    'pt',
    String(opts.codec?.pt ?? 0),
    '-key',
    'rtpmap',
    opts.codec?.rtpmap ?? 'PCMU/8000',
    ...Object.entries(opts.keys ?? {}).flatMap(([key, value]) => ['-key', key, value]),
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

/** Waits for SIPp's log to hold the 200 to its request `cseq` (with `recvonly` recvonly streams when `sdp`); returns that message. */
async function answer(run: SippRun, cseq = '1 INVITE', sdp = true, recvonly = 2): Promise<string> {
  const pattern = new RegExp(
    `SIP/2\\.0 200 OK\\r?\\n(?:(?!\\r?\\n\\r?\\n)[\\s\\S])*CSeq: ${cseq}${sdp ? `[\\s\\S]*?\\r?\\n\\r?\\n${'[\\s\\S]*?a=recvonly'.repeat(recvonly)}\\r?\\n` : '(?:(?!\\r?\\n\\r?\\n)[\\s\\S])*'}`,
  );
  for (let i = 0; i < 800; i++) {
    const log = await fs.readFile(run.messages, 'utf8').catch(() => '');
    const ok = pattern.exec(log);
    if (ok) return ok[0];
    await sleep(25);
  }
  throw new Error(`no 200 to ${cseq} in SIPp's log`);
}

/** An RTP packet (PCMU by default). */
function rtp(seq: number, timestamp: number, ssrc: number, payload: Buffer, payloadType = 0): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = payloadType;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}

type Bursts = Readonly<Record<'caller' | 'agent', readonly (readonly [number, number])[]>>;

/**
 * One leg's packets in send order: a lost one, a duplicate, a swapped pair; `ssrcChangeAt`
 * re-originates the stream. `bursts` (ms) of the leg's tone over `seconds`.
 */
function legPackets(leg: 'caller' | 'agent', ssrcChangeAt?: number, bursts: Bursts = BURSTS, seconds = SECONDS) {
  const pcm = synthesizeTones(
    8000,
    1,
    seconds,
    bursts[leg].map(([from, to]) => [0, FREQ[leg], from, to] as const),
  );
  const encode = encoderFor({ codec: 'pcmu', sampleRate: 8000 });
  const packets: Buffer[] = [];
  for (let i = 0; i < (seconds * 8000) / FRAME; i++) {
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

/** Sends RTP to the answered ports from one socket: `send(packets, port)`; `close()` when done. */
async function rtpSender() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const send = (packet: Buffer, port: number) =>
    new Promise<void>((resolve, reject) =>
      socket.send(packet, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  return {
    send,
    /** Packets `[from, to)` of both streams, interleaved; the first pair together (they set the streams' alignment). */
    async streams(ports: number[], first: Buffer[], second: Buffer[], from = 0, to = Infinity) {
      if (from === 0) await Promise.all([send(first[0], ports[0]), send(second[0], ports[1])]);
      for (let i = Math.max(from, 1); i < Math.min(to, Math.max(first.length, second.length)); i++) {
        if (first[i]) await send(first[i], ports[0]);
        if (second[i]) await send(second[i], ports[1]);
        if (i % 10 === 0) await sleep(1);
      }
    },
    close: () => socket.close(),
  };
}

/** The call's recording holds each leg's tone bursts within 1 ms, on `channelOf[leg]` and nowhere else. */
async function expectBursts(callId: string, bursts: Bursts, channelOf: Record<'caller' | 'agent', number>) {
  const found = await recordedBursts(callId, undefined, channelOf);
  for (const leg of ['caller', 'agent'] as const) {
    expect(found[leg]).toHaveLength(bursts[leg].length);
    bursts[leg].forEach(([from, to], i) => {
      expect(Math.abs(found[leg][i].startMs - from)).toBeLessThanOrEqual(1);
      expect(Math.abs(found[leg][i].endMs - to)).toBeLessThanOrEqual(1);
    });
  }
}

const ALICE = { id: 'srfBElmCRp2QB23b7Mpk0w==', aor: 'sip:+15551234567@carrier.example.net', name: 'Alice Caller' };
const BOB = { id: 'zSfPoSvdSDCmU3A3TRDxAw==', aor: 'sip:agent@contact-centre.example.com', name: 'Agent Bob' };

test.each([
  { transport: 'udp', agentAor: null },
  { transport: 'tcp', agentAor: null },
  { transport: 'udp', agentAor: 'sip:+1555*@carrier.example.net' },
])(
  'a SIPREC session from SIPp over $transport (siprec_agent_aor $agentAor) records both participants: onsets within 1 ms on their channels, through reordering, loss, a duplicate and an SSRC change',
  async ({ transport, agentAor }) => {
    const agentId = `agent-sip-${transport}${agentAor ? '-aor' : ''}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      dual_channel: true,
      siprec_agent_aor: agentAor,
    });
    const run = await sipp('siprec-uac', { agent: agentId, tcp: transport === 'tcp' });
    const ok = await answer(run);
    const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
    const ports = [...ok.matchAll(/m=audio (\d+) RTP\/AVP 0 101 13\r?\n/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(2);
    expect(ok).toMatch(/a=label:1/);

    // The first stream (label 1) is Alice's. Without siprec_agent_aor she is the caller, though
    // the metadata lists her second; with it naming her AOR she is the agent (right channel).
    const rtp = await rtpSender();
    await rtp.streams(ports, legPackets('caller'), legPackets('agent', 75));
    rtp.close();
    expect(await run.exit).toBe(0);

    const rec = await ts.recording(callId);
    expect(rec).toMatchObject({ status: 'ready', format: 'wav', channels: 2 });
    const call = await (await ts.api(`/api/calls/${callId}`)).json();
    expect(call).toMatchObject({ provider: 'siprec', mode: 'fork', agent_id: agentId });
    const aliceLeg = agentAor ? 'agent' : 'caller';
    expect((call as { participants: unknown }).participants).toEqual([
      { ...BOB, leg: agentAor ? 'caller' : 'agent' },
      { ...ALICE, leg: aliceLeg },
    ]);
    // The tone sent as "caller" is on Alice's stream: on her leg's channel.
    await expectBursts(callId, BURSTS, agentAor ? { caller: 1, agent: 0 } : { caller: 0, agent: 1 });
  },
  60_000,
);

test('siprec_agent_aor is checked when set: an address of record, * matching any characters', async () => {
  const patch = (value: unknown) =>
    ts.api('/api/agents/agent-sip-aor-check', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ voice_tools: { call_recording: { siprec_agent_aor: value } } }),
    });
  const bad = await patch('agents.example.com');
  expect(bad.status).toBe(400);
  expect(JSON.stringify(await bad.json())).toMatch(/siprec_agent_aor.*must be an address of record/);
  expect((await patch('sip:*@agents.example.com')).status).toBe(200);
  expect((await patch(null)).status).toBe(200);
});

/** Tone bursts of the transfer test, ms: each leg has one before the re-INVITE (at 3 s of audio) and one after. */
const TRANSFER_BURSTS: Bursts = {
  caller: [
    [300, 800],
    [3500, 4200],
  ],
  agent: [
    [1000, 1600],
    [4500, 5200],
  ],
};

test('metadata updates by re-INVITE and UPDATE: a transfer keeps each stream on its leg, participants join, leave and are renamed; both refresh the session timer', async () => {
  const agentId = 'agent-sip-update';
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const run = await sipp('siprec-update', { agent: agentId, keys: { SE: '10' } });
  const ok = await answer(run);
  expect(ok).toMatch(/^Session-Expires: 10;refresher=uac\r?$/m);
  expect(ok).toMatch(/^Require: timer\r?$/m);
  expect(ok).toMatch(/^Allow: .*\bUPDATE\b/m);
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
  const ports = [...ok.matchAll(/m=audio (\d+) RTP\/AVP 0 101/g)].map((m) => Number(m[1]));
  const caller = legPackets('caller', undefined, TRANSFER_BURSTS, 6);
  const agent = legPackets('agent', undefined, TRANSFER_BURSTS, 6);
  const rtp = await rtpSender();
  // Alice's audio on stream 1 until the re-INVITE says Carol sends it; then Carol's.
  await rtp.streams(ports, caller, agent, 0, 150);
  const reinvited = await answer(run, '2 INVITE');
  expect(reinvited).toMatch(/^Session-Expires: 10;refresher=uac\r?$/m);
  // The update is saved as it is answered: the API shows it once the write lands.
  const participants = async (count: number) => {
    for (;;) {
      const view = (await (await ts.api(`/api/calls/${callId}`)).json()) as { participants: unknown[] };
      if (view.participants.length >= count) return view.participants;
      await sleep(25);
    }
  };
  expect(await participants(3)).toEqual([
    { ...BOB, leg: 'agent' },
    { ...ALICE, leg: 'caller', left_at: '2026-01-01T12:00:03.000Z' },
    {
      id: 'Q2Fyb2xUcmFuc2ZlcmVl',
      aor: 'sip:+15559876543@carrier.example.net',
      name: 'Carol Transferee',
      leg: 'caller',
      joined_at: expect.any(String),
    },
  ]);
  await rtp.streams(ports, caller, agent, 150);
  rtp.close();
  const updated = await answer(run, '3 UPDATE', false);
  expect(updated).toMatch(/^Session-Expires: 10;refresher=uac\r?$/m);
  expect(updated).toMatch(/^Content-Length: 0\r?$/m);
  // The BYE comes 9 s after the 200: the session lived past 6.7 s on the refreshes.
  expect(await run.exit).toBe(0);

  const rec = await ts.recording(callId);
  expect(rec).toMatchObject({ status: 'ready', channels: 2 });
  const call = (await (await ts.api(`/api/calls/${callId}`)).json()) as {
    participants: Record<string, unknown>[];
    end_reason: string;
  };
  expect(call.end_reason).toMatch(/BYE/);
  expect(call.participants).toEqual([
    { ...BOB, name: 'Agent Robert', leg: 'agent' },
    { ...ALICE, leg: 'caller', left_at: '2026-01-01T12:00:03.000Z' },
    expect.objectContaining({ id: 'Q2Fyb2xUcmFuc2ZlcmVl', leg: 'caller' }),
    {
      id: 'RGF2ZVN1cGVydmlzb3I=',
      aor: 'sip:supervisor@contact-centre.example.com',
      name: 'Dave Supervisor',
      leg: null,
      joined_at: expect.any(String),
    },
  ]);
  // Before and after the transfer, stream 1's audio is on the caller's channel, stream 2's on the agent's.
  await expectBursts(callId, TRANSFER_BURSTS, { caller: 0, agent: 1 });
}, 90_000);

test("a re-INVITE adds a stream (recorded on its sender's leg, placed by its sender report) and another removes one (port 0, its port pair closed)", async () => {
  const agentId = 'agent-sip-restream';
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const run = await sipp('siprec-restream', { agent: agentId });
  const ok = await answer(run);
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
  const audioPorts = (message: string) => [...message.matchAll(/m=audio (\d+) /g)].map((m) => Number(m[1]));
  const ports = audioPorts(ok);
  expect(ports).toHaveLength(2);
  // Alice (label 1, caller) and Bob (label 2, agent) for 1.5 s (sent at once: the session's clock
  // is then at 1.5 s); then Bob's second stream (label 3), which the first re-INVITE adds, from
  // 1.8 s: its burst at 2200-2600 ms.
  const bursts: Bursts = {
    caller: [
      [200, 600],
      [1000, 1400],
    ],
    agent: [[700, 1100]],
  };
  const third: Bursts = { caller: [], agent: [[400, 800]] };
  const sender = await rtpSender();
  await sender.streams(
    ports,
    legPackets('caller', undefined, bursts, 1.5),
    legPackets('agent', undefined, bursts, 1.5),
  );
  // Alice's report is the reference: NTP `ntp` is the session's start.
  const ntp = 3_900_000_000.5;
  await sender.send(senderReport(0x1111, ntp, 0xffff_f000), ports[0] + 1);

  const added = await answer(run, '2 INVITE', true, 3);
  const addedPorts = audioPorts(added);
  expect(addedPorts.slice(0, 2)).toEqual(ports);
  expect(addedPorts).toHaveLength(3);
  expect(addedPorts[2]).toBeGreaterThan(0);
  expect(added).toMatch(/^o=callrec \d+ 2 /m);
  // The third stream starts 1.8 s into the session by the SRC's clock; its first packet arrives
  // earlier (about 1 s in) and is delayed to where its sender report puts it.
  await sender.send(senderReport(0x2222, ntp + 1.8, 0xffff_f000), addedPorts[2] + 1);
  await sleep(20);
  const thirdPackets = legPackets('agent', undefined, third, 1);
  for (const [i, packet] of thirdPackets.entries()) {
    await sender.send(packet, addedPorts[2]);
    if (i % 10 === 0) await sleep(1);
  }

  const removed = await answer(run, '3 INVITE');
  expect(audioPorts(removed)).toEqual([ports[0], 0, addedPorts[2]]);
  // Stream 2's port pair is closed: this process can bind both ports.
  for (const port of [ports[1], ports[1] + 1]) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', resolve);
    });
    socket.close();
  }
  sender.close();
  expect(await run.exit).toBe(0);

  await ts.recording(callId);
  const call = (await (await ts.api(`/api/calls/${callId}`)).json()) as { participants: Record<string, unknown>[] };
  expect(call.participants).toEqual([
    { ...BOB, leg: 'agent' },
    { ...ALICE, leg: 'caller' },
  ]);
  // Bob's second stream is on the agent's channel, where its report puts it, within 1 ms.
  await expectBursts(
    callId,
    {
      caller: bursts.caller,
      agent: [
        [700, 1100],
        [2200, 2600],
      ],
    },
    { caller: 0, agent: 1 },
  );
}, 60_000);

test('a session timer not refreshed: callrec sends the BYE, and the recording is finalized with the lost span', async () => {
  const agentId = 'agent-sip-expire';
  await ts.agent(agentId, { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
  const run = await sipp('siprec-expire', { agent: agentId, keys: { SE: '3' } });
  const ok = await answer(run);
  expect(ok).toMatch(/^Session-Expires: 3;refresher=uac\r?$/m);
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
  const ports = [...ok.matchAll(/m=audio (\d+) RTP\/AVP 0 101/g)].map((m) => Number(m[1]));
  // One second of audio, then nothing: no RTP, no refresh. The session ends 2 s after the 200.
  const rtp = await rtpSender();
  await rtp.streams(ports, legPackets('caller'), legPackets('agent'), 0, 50);
  rtp.close();
  expect(await run.exit).toBe(0);
  const log = await fs.readFile(run.messages, 'utf8');
  expect(log).toMatch(
    /^BYE sip:[\s\S]*?^Reason: Q\.850;cause=16;text="ERR_SIP_SESSION_EXPIRED: no session refresh within 3 s"/m,
  );

  const rec = await ts.recording(callId);
  expect(rec).toMatchObject({ status: 'ready', complete: false });
  const call = (await (await ts.api(`/api/calls/${callId}`)).json()) as {
    end_reason: string;
    recording: { lost_spans: { start_ms: number; end_ms: number; reason: string }[] };
  };
  expect(call.end_reason).toMatch(/ERR_SIP_SESSION_EXPIRED/);
  // (A machine too busy to keep up may list late frames too.)
  const span = call.recording.lost_spans.find((s) => s.reason === 'SIP session expired without a refresh')!;
  expect(span).toBeDefined();
  // From the end of the audio received (1 s) to the expiry, 2 s after the 200 at the soonest.
  expect(Math.abs(span.start_ms - 1000)).toBeLessThanOrEqual(20);
  expect(span.end_ms).toBeGreaterThanOrEqual(span.start_ms);
}, 60_000);

test('OPTIONS is answered 200 over UDP and TCP', async () => {
  expect(await (await sipp('options')).exit).toBe(0);
  expect(await (await sipp('options', { tcp: true })).exit).toBe(0);
  const metrics = await (await fetch(`${ts.server.url}/metrics`)).text();
  expect(metrics).toMatch(/^callrec_sip_requests_total\{method="OPTIONS",status="200"\} 2$/m);
  // The SIPREC sessions above: three siprec-uac, the update scenario's INVITE and re-INVITE, the
  // restream scenario's INVITE and two re-INVITEs, the expiry scenario's.
  expect(metrics).toMatch(/^callrec_sip_requests_total\{method="INVITE",status="200"\} 9$/m);
  expect(metrics).toMatch(/^callrec_sip_requests_total\{method="UPDATE",status="200"\} 1$/m);
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

/** The recording's tone bursts per leg, each leg's on its own channel only (`channelOf`: caller left, agent right by default). */
async function recordedBursts(
  callId: string,
  expectedRate?: number,
  channelOf: Record<'caller' | 'agent', number> = { caller: 0, agent: 1 },
) {
  const audio = await decodeAudio(
    new Uint8Array(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer()),
    'wav',
  );
  if (expectedRate) expect(audio.sampleRate).toBe(expectedRate);
  const found = {
    caller: findBursts(audio.channels[channelOf.caller], audio.sampleRate, FREQ.caller),
    agent: findBursts(audio.channels[channelOf.agent], audio.sampleRate, FREQ.agent),
  };
  expect(findBursts(audio.channels[channelOf.agent], audio.sampleRate, FREQ.caller)).toEqual([]);
  expect(findBursts(audio.channels[channelOf.caller], audio.sampleRate, FREQ.agent)).toEqual([]);
  return found;
}

/** A codec over RTP as the test sends it: its SDP, the rate and channels of the audio it carries, its RTP clock, a 20 ms frame's encoder. */
interface RtpCodec {
  pt: number;
  rtpmap: string;
  rate: number;
  channels: 1 | 2;
  clock: number;
  encoder(): (pcm: Int16Array) => Buffer;
}

const bigEndian = () => (pcm: Int16Array) => {
  const out = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) out.writeInt16BE(pcm[i], 2 * i);
  return out;
};

const RTP_CODECS: Record<string, RtpCodec> = {
  // RFC 3551 §4.5.2: 16 kHz audio, an 8 kHz RTP clock.
  G722: {
    pt: 9,
    rtpmap: 'G722/8000',
    rate: 16000,
    channels: 1,
    clock: 8000,
    encoder: () => {
      const encoder = new G722Encoder();
      return (pcm) => encoder.encode(pcm);
    },
  },
  // RFC 7587: always opus/48000/2; the tone on both channels.
  opus: {
    pt: 111,
    rtpmap: 'opus/48000/2',
    rate: 48000,
    channels: 2,
    clock: 48000,
    encoder: () => {
      const encoder = new opus.OpusEncoder(48000, 2);
      return (pcm) => encoder.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    },
  },
  'L16/16000': { pt: 96, rtpmap: 'L16/16000', rate: 16000, channels: 1, clock: 16000, encoder: bigEndian },
  'L16/48000': { pt: 97, rtpmap: 'L16/48000', rate: 48000, channels: 1, clock: 48000, encoder: bigEndian },
};

/** One leg's packets of `codec`, 20 ms each: one lost and one duplicated in silence; `cn`: comfort noise (PT 13) for 100 ms of silence. */
function codecPackets(leg: 'caller' | 'agent', codec: RtpCodec, cn: boolean): Buffer[] {
  const tones = BURSTS[leg].flatMap(([from, to]) =>
    Array.from({ length: codec.channels }, (_, channel) => [channel, FREQ[leg], from, to] as const),
  );
  const pcm = synthesizeTones(codec.rate, codec.channels, SECONDS, tones);
  const encode = codec.encoder();
  const frame = (codec.rate / 50) * codec.channels;
  const ssrc = leg === 'caller' ? 0x3333 : 0x4444;
  // Silent stretches of each leg (ms / 20): where comfort noise, the loss and the duplicate go.
  const quiet = leg === 'caller' ? 40 : 60;
  const packets: Buffer[] = [];
  for (let i = 0; i < SECONDS * 50; i++) {
    const payload = encode(pcm.subarray(i * frame, (i + 1) * frame));
    const timestamp = 0xffff_fe00 + (i * codec.clock) / 50;
    packets.push(
      cn && i >= quiet && i < quiet + 5
        ? rtp(100 + i, timestamp, ssrc, Buffer.from([0x50]), 13)
        : rtp(100 + i, timestamp, ssrc, payload, codec.pt),
    );
  }
  packets.splice(quiet + 7, 1);
  packets.splice(quiet + 9, 0, packets[quiet + 9]);
  return packets;
}

test.each(Object.keys(RTP_CODECS))(
  'a SIPREC session in %s is decoded at the edge and recorded exactly: onsets within 1 ms on their channels, durations within 20 ms',
  async (name) => {
    const codec = RTP_CODECS[name];
    const agentId = `agent-sip-${name.replace('/', '-')}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      dual_channel: true,
    });
    // Encoded before the session starts: SIPp hangs up 4 s after its ACK.
    const cn = codec.clock === 8000;
    const caller = codecPackets('caller', codec, cn);
    const agent = codecPackets('agent', codec, cn);
    const run = await sipp('siprec-uac', { agent: agentId, codec });
    const ok = await answer(run);
    const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
    // The answer names the codec as the offer did; comfort noise is answered where it runs on the codec's clock.
    const line = new RegExp(
      `m=audio (\\d+) RTP/AVP ${codec.pt}${codec.clock === 8000 ? ' 101 13' : ''}\\r?\\na=rtpmap:${codec.pt} ${codec.rtpmap}\\r?\\n`,
      'g',
    );
    const ports = [...ok.matchAll(line)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(2);
    const sender = await rtpSender();
    await Promise.all([sender.send(caller[0], ports[0]), sender.send(agent[0], ports[1])]);
    // Sender reports that the streams started together, as an SRC's RTCP says: on a busy host the
    // first packets may be handled far enough apart to count as starting apart.
    await sender.send(senderReport(0x3333, 3_900_000_000, 0xffff_fe00), ports[0] + 1);
    await sender.send(senderReport(0x4444, 3_900_000_000, 0xffff_fe00), ports[1] + 1);
    await sleep(20);
    await sender.streams(ports, caller, agent, 1);
    sender.close();
    expect(await run.exit).toBe(0);

    const rec = await ts.recording(callId);
    expect(rec).toMatchObject({ status: 'ready', format: 'wav', channels: 2, lostSpans: [] });
    const found = await recordedBursts(callId, 16000);
    // Both legs as sent, from the session's start or, if the first packets were handled apart,
    // both from the later one's arrival (the SRs aligned them).
    const shift = found.caller[0].startMs - BURSTS.caller[0][0];
    expect(shift).toBeGreaterThan(-1);
    for (const leg of ['caller', 'agent'] as const) {
      expect(found[leg]).toHaveLength(BURSTS[leg].length);
      BURSTS[leg].forEach(([from, to], i) => {
        expect(Math.abs(found[leg][i].startMs - from - shift)).toBeLessThanOrEqual(1);
        expect(Math.abs(found[leg][i].endMs - found[leg][i].startMs - (to - from))).toBeLessThanOrEqual(20);
      });
    }
  },
  60_000,
);

test('streams whose first packets arrive 250 ms apart, but whose RTCP sender reports say they are simultaneous, are recorded aligned (RTCP on the RTP port + 1 and multiplexed on the RTP port)', async () => {
  const agentId = 'agent-sip-rtcp';
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const run = await sipp('siprec-uac', { agent: agentId });
  const ok = await answer(run);
  const callId = siprecCallId(/Call-ID: (\S+)/.exec(ok)![1]);
  const ports = [...ok.matchAll(/m=audio (\d+) RTP\/AVP 0 101 13\r?\n/g)].map((m) => Number(m[1]));
  const sender = await rtpSender();
  const caller = legPackets('caller');
  const agent = legPackets('agent');
  // 250 ms: more than handling the session's first packet takes on a busy host (up to ~110 ms
  // measured), during which a stream's first packet counts as starting with it.
  await sender.send(caller[0], ports[0]);
  await sleep(250);
  await sender.send(agent[0], ports[1]);
  // Both first packets (timestamp 0xfffff000) were sampled at one NTP instant: the caller's
  // report on its RTCP port, the agent's multiplexed on its RTP port (RFC 5761).
  const ntp = 3_900_000_000.5;
  await sender.send(senderReport(0x1111, ntp, 0xffff_f000), ports[0] + 1);
  await sender.send(senderReport(0x2222, ntp, 0xffff_f000), ports[1]);
  await sleep(20);
  await sender.streams(ports, caller, agent, 1);
  sender.close();
  expect(await run.exit).toBe(0);

  await ts.recording(callId);
  const found = await recordedBursts(callId);
  // The caller, whose audio arrived first, was delayed by the agent's lateness: its bursts are
  // that much (about 250 ms, as this process measured it) after where it sent them, and the agent's exactly as much.
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
