import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { readFixture } from '../../src/replay/fixture.js';
import { fillDisk } from '../helpers/disk.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const run = promisify(execFile);
const AGENT = 'disk-agent';

/*
 * Issue 13, case 4 on the media path: the node's spool directory is a small tmpfs (this needs
 * root, as CI and the development machines have) filled to its last byte mid-call, then freed.
 */

let ts: TestServer;
let spoolDir: string;
let receiver: WebhookReceiver;
let startMessage: Record<string, any>;

beforeAll(async () => {
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  startMessage = JSON.parse(
    fixture.messages.find((m) => (m.data as string).includes('"event":"start"'))!.data as string,
  );
  ts = await startTestServer();
  spoolDir = path.join(ts.dataDir, 'spool');
  await fs.mkdir(spoolDir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', spoolDir]);
  await ts.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' });
  receiver = await WebhookReceiver.start();
  const res = await ts.api(`/api/tenants/${ts.tenantId}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ webhook_url: receiver.url, webhook_secret: 'a secret of sixteen+' }),
  });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  // Detached first (lazily: the server may hold files there until it closes), so its data dir can go.
  if (spoolDir) await run('umount', ['-l', spoolDir]).catch(() => {});
  await ts?.close();
  await receiver?.close();
});

/** A Twilio stream that has sent its start; `media` sends both legs' frames of [fromMs, toMs), a loud constant (μ-law 0x80). */
async function call(
  callId: string,
): Promise<{ ws: WebSocket; media(fromMs: number, toMs: number): void; stop(): Promise<void> }> {
  const ws = new WebSocket(`${ts.wsUrl}/media/twilio`);
  const closed = new Promise((resolve) => ws.on('close', resolve));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const start = structuredClone(startMessage);
  start.start.customParameters = { agent_id: AGENT, token: ts.key, call_id: callId };
  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  ws.send(JSON.stringify(start));
  const payload = Buffer.alloc(160, 0x80).toString('base64');
  return {
    ws,
    media(fromMs, toMs) {
      for (let t = fromMs; t < toMs; t += 20) {
        for (const track of ['inbound', 'outbound']) {
          ws.send(
            JSON.stringify({
              event: 'media',
              streamSid: start.streamSid,
              media: { track, chunk: '1', timestamp: String(t), payload },
            }),
          );
        }
      }
    },
    async stop() {
      ws.send(JSON.stringify({ event: 'stop', streamSid: start.streamSid, stop: {} }));
      await closed;
    },
  };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | null | false | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The answer to a media upgrade the server refuses. */
function refusedUpgrade(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${ts.wsUrl}/media/twilio`);
    ws.on('error', () => {});
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

test('the spool disk fills mid-call: the call goes on, new streams are refused until space is back, the recording is ready, partial, as long as the call, its gap listed', async () => {
  const callId = uniqueCallId('full');
  const live = await call(callId);
  live.media(0, 2000);
  const spoolPath = await until('the spool on disk', async () => {
    const recording = await ts.server.store.recordings.getByCall(ts.tenantId, callId);
    return (
      recording?.spoolPath &&
      (await fs.stat(recording.spoolPath).then(
        (s) => s.size >= 44 + 1.5 * 8000 * 4 && recording.spoolPath,
        () => null,
      ))
    );
  });
  expect(spoolPath.startsWith(spoolDir)).toBe(true);

  const filler = path.join(spoolDir, 'filler');
  await fillDisk(filler);
  live.media(2000, 5000);
  // Marked partial at once (within the spool's next flush), and the tenant told.
  const partial = await until('the recording marked partial', async () => {
    const recording = await ts.server.store.recordings.getByCall(ts.tenantId, callId);
    return recording && !recording.complete && recording;
  });
  expect(partial).toMatchObject({
    status: 'recording',
    error: expect.stringMatching(/^spool write failed: .*ENOSPC|no space/i),
  });
  expect(partial.lostSpans).toEqual([expect.objectContaining({ reason: 'spool write failed' })]);
  const [lostEvent] = await receiver.waitForDelivered(1);
  expect(JSON.parse(lostEvent.body)).toMatchObject({
    type: 'recording.audio_lost',
    data: { call_id: callId, status: 'recording', complete: false },
  });

  const refused = await refusedUpgrade();
  expect(refused.status).toBe(503);
  expect(refused.body).toMatch(/^ERR_SPOOL_UNWRITABLE: .*ENOSPC/);
  const notReady = await fetch(`${ts.server.url}/readyz`);
  expect(notReady.status).toBe(503);
  expect(await notReady.json()).toMatchObject({ checks: { spool_disk: false }, failed: ['spool_disk'] });
  const metrics = await (await fetch(`${ts.server.url}/metrics`)).text();
  expect(metrics).toMatch(/^callrec_spool_writable 0$/m);
  expect(metrics).toMatch(/^callrec_spool_write_errors_total [1-9]/m);
  expect(metrics).toMatch(/^callrec_stream_limit_total\{limit="ERR_SPOOL_UNWRITABLE"\} 1$/m);
  expect(metrics).toMatch(/^callrec_spool_pending_bytes \d+$/m);

  // The call goes on while the disk is full.
  live.media(5000, 6000);
  expect(live.ws.readyState).toBe(WebSocket.OPEN);

  await fs.rm(filler);
  await until('/readyz ok again', async () => (await fetch(`${ts.server.url}/readyz`)).status === 200);
  const other = uniqueCallId('after');
  const next = await call(other);
  next.media(0, 1000);
  live.media(6000, 8000);
  await Promise.all([live.stop(), next.stop()]);

  const recording = await ts.recording(callId);
  expect(recording).toMatchObject({ status: 'ready', complete: false, durationMs: 8000 });
  expect(recording.lostSpans).toHaveLength(1);
  const [lost] = recording.lostSpans;
  expect(lost.reason).toBe('spool write failed');
  // From about where the disk filled (the spool had 1.5–2 s) to about where space came back (5–6 s):
  // what the spool still held in memory when space came back (its buffer, up to a second) is
  // written then, not lost.
  expect(lost.start_ms).toBeGreaterThanOrEqual(1000);
  expect(lost.start_ms).toBeLessThanOrEqual(2000);
  expect(lost.end_ms).toBeGreaterThanOrEqual(4000);
  expect(lost.end_ms).toBeLessThanOrEqual(6500);
  expect(await ts.recording(other)).toMatchObject({ status: 'ready', complete: true, lostSpans: [], durationMs: 1000 });

  // Where the spool kept the audio it is there, in place; the lost span is silence.
  const wav = Buffer.from(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer());
  const pcm = new Int16Array(wav.buffer, wav.byteOffset + 44, (wav.length - 44) / 2);
  const frames = (fromMs: number, toMs: number) => pcm.subarray(fromMs * 16, toMs * 16);
  expect(frames(0, lost.start_ms - 20).every((s) => s !== 0)).toBe(true);
  expect(frames(lost.start_ms + 20, lost.end_ms - 20).every((s) => s === 0)).toBe(true);
  expect(frames(lost.end_ms + 20, 8000).every((s) => s !== 0)).toBe(true);
  const completed = (await receiver.waitForDelivered(3))
    .map((r) => JSON.parse(r.body))
    .find((e) => e.type === 'recording.completed' && e.data.call_id === callId);
  expect(completed).toMatchObject({ data: { complete: false, lost_spans: recording.lostSpans } });
});
