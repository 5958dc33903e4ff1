import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { FRAME_MS, payloadAt, runLoad } from '../../bench/load.js';
import { rtpPacket, SiprecClient, siprecFramesCounted, siprecStream } from '../../bench/siprec-client.js';
import { encoderFor } from '../../media/codec.js';
import { siprecCallId } from '../../src/sip/siprec.js';
import { decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Many recording sessions at once on one node: each a SIPREC INVITE over UDP from a Node SRC
 * (bench/siprec-client.ts), then both participants' RTP in real time from a few shared sockets
 * (the bench's load generator), then a BYE.
 */

const SESSIONS = 200;
const SECONDS = 3;

let ts: TestServer;
beforeAll(async () => {
  // Two ports per session (RTP_PORTS hands out even ports only), and headroom: a port another
  // process holds is skipped. MAX_STREAMS_PER_NODE (2000) and the unset per-tenant limit leave room.
  const first = 20_000 + 2 * Math.floor(Math.random() * 4_000);
  // The node, the SRC and the RTP senders share this process (and a busy machine): its event
  // loop stalls, and every stream's backlog is read after it. The default jitter window: a
  // session hands its streams' audio on in position order (RecordingSession#deliverMedia).
  ts = await startTestServer({
    env: { SIP_LISTEN: 'udp:127.0.0.1:0', RTP_PORTS: `${first}-${first + 4 * SESSIONS + 199}` },
  });
  const res = await ts.api(`/api/tenants/${ts.tenantId}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sip_sources: ['127.0.0.1'] }),
  });
  expect(res.status).toBe(200);
}, 60_000);
afterAll(() => ts?.close());

async function scrape(): Promise<string> {
  return (await fetch(`${ts.server.url}/metrics`)).text();
}

const siprecFrames = (text: string) =>
  Number(/^callrec_frames_total\{provider="siprec"\} (\S+)$/m.exec(text)?.[1] ?? 0);

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

test(`${SESSIONS} SIPREC sessions at once (${2 * SESSIONS} RTP streams) are all answered, recorded whole and finalized, with no packet lost`, async () => {
  const agentId = 'agent-sip-many';
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const sip = ts.server.siprec!.transport.addresses()[0];
  const client = await SiprecClient.open({ host: sip.host, port: sip.port });
  const stream = await siprecStream(client);
  const callIds = Array.from({ length: SESSIONS }, (_, i) => `many-${i}-${Date.now().toString(36)}`);
  let active = Number.NaN;
  try {
    const load = await runLoad({
      url: '',
      stream,
      callIds,
      seconds: SECONDS,
      tracks: 'both',
      params: { agent_id: agentId },
      // Every INVITE answered 200 (runLoad throws on a refusal) before the first packet.
      beforeFrames: async () => void (active = metric(await scrape(), 'callrec_sip_sessions_active')),
      // This process sends and receives every packet: the BYEs wait until the node has read them all.
      beforeHangUp: () => siprecFramesCounted(ts.server.url, SESSIONS * 2 * ((SECONDS * 1000) / FRAME_MS)),
    });
    expect(active).toBe(SESSIONS);
    // Every BYE answered 200.
    expect(load.closeCodes).toEqual(callIds.map(() => 1000));
    expect(load.framesSent).toBe(SESSIONS * 2 * load.ticks);
  } finally {
    await stream.close();
    await client.close();
  }

  for (const callId of callIds) {
    const rec = await ts.recording(siprecCallId(callId), 120_000);
    expect(rec).toMatchObject({ status: 'ready', complete: true, lostSpans: [], channels: 2 });
    // Every packet placed on its leg, none dropped. (Where the legs start relative to each other
    // is when their first packets were read: a busy process may read one leg a frame later.)
    const call = (await (await ts.api(`/api/calls/${siprecCallId(callId)}`)).json()) as {
      alignment: Record<string, number>;
    };
    expect(call.alignment).toMatchObject({ framesPlaced: (2 * SECONDS * 1000) / FRAME_MS, framesDropped: 0 });
    expect(rec.durationMs).toBeGreaterThanOrEqual(SECONDS * 1000);
  }
  const metrics = await scrape();
  expect(metric(metrics, 'callrec_sip_sessions_active')).toBe(0);
  expect(metric(metrics, 'callrec_rtp_packets_lost_total')).toBe(0);
  expect(metric(metrics, 'callrec_rtp_packets_late_total')).toBe(0);
  expect(metrics).toMatch(
    new RegExp(`^callrec_sip_requests_total\\{method="INVITE",status="200"\\} ${SESSIONS}$`, 'm'),
  );
  expect(metrics).toMatch(new RegExp(`^callrec_sip_requests_total\\{method="BYE",status="200"\\} ${SESSIONS}$`, 'm'));
  expect(metrics).toMatch(
    new RegExp(`^callrec_frames_total\\{provider="siprec"\\} ${(SESSIONS * 2 * (SECONDS * 1000)) / FRAME_MS}$`, 'm'),
  );
}, 300_000);

test('a session with a packet never sent and one sent past the jitter window counts one lost and one late packet in /metrics, and the late one as lost audio', async () => {
  const agentId = 'agent-sip-loss';
  await ts.agent(agentId, {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    format: 'wav',
    dual_channel: true,
  });
  const before = await scrape();
  const sip = ts.server.siprec!.transport.addresses()[0];
  const client = await SiprecClient.open({ host: sip.host, port: sip.port });
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const callId = `loss-${Date.now().toString(36)}`;
  try {
    const session = await client.invite(agentId, callId);
    expect(metric(await scrape(), 'callrec_sip_sessions_active')).toBe(1);
    const ticks = 150;
    // The agent's packet 10 goes after its packet 120: 2.2 s late, past the jitter window,
    // within the 128-packet loss window.
    const held = 10;
    const packet = (tick: number, ssrc: number) =>
      rtpPacket(tick, tick * 160, ssrc, Buffer.from(payloadAt(tick), 'base64'));
    const send = (data: Buffer, port: number) => socket.send(data, port, '127.0.0.1');
    for (let tick = 0; tick < ticks; tick++) {
      // The caller's packet 5 is never sent.
      if (tick !== 5) send(packet(tick, 0x1111), session.ports[0]);
      if (tick !== held) send(packet(tick, 0x2222), session.ports[1]);
      if (tick === 120) send(packet(held, 0x2222), session.ports[1]);
      await sleep(FRAME_MS);
    }
    await siprecFramesCounted(ts.server.url, siprecFrames(before) + 2 * ticks - 1);
    expect(await client.bye(session)).toBe(200);
  } finally {
    socket.close();
    await client.close();
  }
  const rec = await ts.recording(siprecCallId(callId), 60_000);
  // The late packet's 20 ms are lost audio; the packet never sent is a gap, silence.
  expect(rec).toMatchObject({ status: 'ready', complete: false });
  expect(rec.lostSpans).toHaveLength(1);
  const [span] = rec.lostSpans as Array<{ start_ms: number; end_ms: number; reason: string }>;
  expect(span).toMatchObject({ reason: 'frames arrived too late' });
  expect(span.end_ms - span.start_ms).toBe(FRAME_MS);
  const after = await scrape();
  expect(metric(after, 'callrec_rtp_packets_lost_total') - metric(before, 'callrec_rtp_packets_lost_total')).toBe(1);
  expect(metric(after, 'callrec_rtp_packets_late_total') - metric(before, 'callrec_rtp_packets_late_total')).toBe(1);
  expect(metric(after, 'callrec_sip_sessions_active')).toBe(0);
}, 120_000);

test.each([20, 40])(
  "after a stall, one stream's backlog read before the other's loses nothing (the agent's packets %i ms): both legs' tones complete, onsets within 1 ms, no late packet",
  async (agentPtime) => {
    const agentId = `agent-sip-stall-${agentPtime}`;
    await ts.agent(agentId, {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      format: 'wav',
      dual_channel: true,
    });
    const seconds = 4;
    const freq = { caller: 1000, agent: 1500 } as const;
    // Bursts (ms) on both sides of the stall, and within it (1000–2600 ms).
    const bursts = {
      caller: [
        [200, 600],
        [1100, 1400],
        [2000, 2400],
        [3000, 3400],
      ],
      agent: [
        [700, 900],
        [1500, 1900],
        [2450, 2800],
        [3500, 3800],
      ],
    } as const;
    const ptime = { caller: 20, agent: agentPtime };
    const packets = (leg: 'caller' | 'agent') => {
      const samples = 8 * ptime[leg];
      const pcm = synthesizeTones(
        8000,
        1,
        seconds,
        bursts[leg].map(([from, to]) => [0, freq[leg], from, to] as const),
      );
      const encode = encoderFor({ codec: 'pcmu', sampleRate: 8000 });
      const ssrc = leg === 'caller' ? 0x5151 : 0x6262;
      return Array.from({ length: (seconds * 1000) / ptime[leg] }, (_, i) =>
        rtpPacket(i, i * samples, ssrc, Buffer.from(encode(pcm.subarray(i * samples, (i + 1) * samples)))),
      );
    };
    const caller = packets('caller');
    const agent = packets('agent');
    const before = await scrape();
    const sip = ts.server.siprec!.transport.addresses()[0];
    const client = await SiprecClient.open({ host: sip.host, port: sip.port });
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const callId = `stall-${Date.now().toString(36)}`;
    try {
      const session = await client.invite(agentId, callId);
      const [callerPort, agentPort] = session.ports;
      // Each leg's packets that start in [from, to) ms.
      const send = (leg: 'caller' | 'agent', from: number, to: number) => {
        const [list, port] = leg === 'caller' ? [caller, callerPort] : [agent, agentPort];
        for (let i = Math.ceil(from / ptime[leg]); i * ptime[leg] < to; i++) socket.send(list[i], port, '127.0.0.1');
      };
      const stall = { from: 1000, to: 2600 };
      for (let ms = 0; ms < seconds * 1000; ms += FRAME_MS) {
        if (ms === stall.from) {
          // A 1.6 s stall of the node: the packets of that span wait in the sockets, and are read
          // the caller's first (up to 32 a poll round), then the agent's. Sent in one turn of this
          // process's event loop, so both backlogs are in the kernel before the node reads either.
          await sleep(stall.to - stall.from);
          send('caller', stall.from, stall.to);
          send('agent', stall.from, stall.to);
          ms = stall.to;
        }
        send('caller', ms, ms + FRAME_MS);
        send('agent', ms, ms + FRAME_MS);
        await sleep(FRAME_MS);
      }
      await siprecFramesCounted(ts.server.url, siprecFrames(before) + caller.length + agent.length);
      expect(await client.bye(session)).toBe(200);
    } finally {
      socket.close();
      await client.close();
    }
    const rec = await ts.recording(siprecCallId(callId), 60_000);
    expect(rec).toMatchObject({ status: 'ready', complete: true, lostSpans: [], channels: 2 });
    const call = (await (await ts.api(`/api/calls/${siprecCallId(callId)}`)).json()) as {
      alignment: Record<string, number>;
    };
    expect(call.alignment).toMatchObject({
      framesPlaced: caller.length + agent.length,
      framesDropped: 0,
      framesTooLate: 0,
    });
    const audio = await decodeAudio(
      new Uint8Array(await (await ts.api(`/api/calls/${siprecCallId(callId)}/recording`)).arrayBuffer()),
      'wav',
    );
    const found = {
      caller: findBursts(audio.channels[0], audio.sampleRate, freq.caller),
      agent: findBursts(audio.channels[1], audio.sampleRate, freq.agent),
    };
    // Both legs where they were sent relative to each other (the session starts at the first
    // packets' arrival: both, or the one read a frame later).
    const shift = found.caller[0].startMs - bursts.caller[0][0];
    for (const leg of ['caller', 'agent'] as const) {
      expect(found[leg]).toHaveLength(bursts[leg].length);
      bursts[leg].forEach(([from, to], i) => {
        expect(Math.abs(found[leg][i].startMs - from - shift)).toBeLessThanOrEqual(1);
        expect(Math.abs(found[leg][i].endMs - to - shift)).toBeLessThanOrEqual(1);
      });
    }
    const after = await scrape();
    expect(metric(after, 'callrec_rtp_packets_late_total') - metric(before, 'callrec_rtp_packets_late_total')).toBe(0);
    expect(metric(after, 'callrec_rtp_packets_lost_total') - metric(before, 'callrec_rtp_packets_lost_total')).toBe(0);
  },
  120_000,
);
