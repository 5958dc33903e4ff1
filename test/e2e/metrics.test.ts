import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture } from '../../src/replay/fixture.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');

let ts: TestServer;
/** The server's log lines, parsed. */
const logLines: Array<Record<string, unknown>> = [];
beforeAll(async () => {
  const log = pino(
    { level: 'info' },
    { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  // Recordings by status are counted on every scrape, not every 30 s.
  ts = await startTestServer({ db: 'postgres', recordingsRefreshMs: 0, log });
  await ts.agent('support', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true });
});
afterAll(() => ts.close());

/** `/metrics` parsed: each sample's value keyed by its name and labels as written (`name{a="b"}`). */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`${ts.server.url}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1], Number(match[2]));
  }
  return samples;
}

function value(samples: Map<string, number>, series: string): number {
  const v = samples.get(series);
  if (v === undefined) throw new Error(`/metrics has no ${series}`);
  return v;
}

test('/metrics exposes the operator series, and they move as a call is recorded', async () => {
  const before = await scrape();
  expect(value(before, 'callrec_draining')).toBe(0);
  expect(value(before, 'callrec_spool_bytes')).toBe(0);
  // A timestamp (Unix seconds) of a beat within the heartbeat's 15 s TTL; the standard process series unprefixed.
  expect(value(before, 'callrec_node_heartbeat_timestamp_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
  expect(value(before, 'callrec_node_heartbeat_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 15);
  expect(value(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  expect(value(before, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  expect([...before.keys()].filter((k) => /^callrec_(process|nodejs)_/.test(k))).toEqual([]);
  for (const queue of ['shared', 'node']) {
    for (const state of ['waiting', 'active', 'delayed', 'failed', 'completed'])
      expect(value(before, `callrec_recording_queue_jobs{queue="${queue}",state="${state}"}`)).toBe(0);
  }
  // A fresh database: no recordings, so no status has a sample yet.
  expect([...before.keys()].filter((k) => k.startsWith('callrec_recordings{'))).toEqual([]);

  const callId = uniqueCallId('metrics');
  const call = replayFixture(await readFixture(FIXTURE), {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: 'support',
    token: ts.key,
    callId,
    speed: 'realtime',
  });
  // While the call runs its spool grows on this node's disk (written once a second).
  while (!(value(await scrape(), 'callrec_spool_bytes') > 44)) await sleep(100);
  await call;
  const recording = await ts.recording(callId);
  expect(recording.status).toBe('ready');

  // The job's counters move once BullMQ has marked it completed, just after the recording is ready.
  let after = await scrape();
  while (!after.has('callrec_recording_jobs_total{outcome="ready"}')) {
    await sleep(20);
    after = await scrape();
  }
  expect(value(after, 'callrec_recording_jobs_total{outcome="ready"}')).toBe(1);
  expect(value(after, 'callrec_recording_job_seconds_count{outcome="ready"}')).toBe(1);
  expect(value(after, 'callrec_recording_job_seconds_sum{outcome="ready"}')).toBeGreaterThan(0);
  expect(value(after, 'callrec_encode_realtime_factor_count')).toBe(1);
  expect(value(after, 'callrec_encode_realtime_factor_sum')).toBeGreaterThan(1);
  expect(value(after, 'callrec_consent_outcomes_total{outcome="not_required"}')).toBe(1);
  // The job ran on this node's own queue and is kept as completed; its spool is gone from the disk.
  expect(value(after, 'callrec_recording_queue_jobs{queue="node",state="completed"}')).toBe(1);
  expect(value(after, 'callrec_spool_bytes')).toBe(0);
  expect(value(after, 'callrec_recordings{status="ready"}')).toBe(1);
  expect(value(after, 'callrec_spool_upload_retries_total')).toBe(0);
  // Nothing failed, nothing was retried, nothing is shipped (no SPOOL_URL).
  for (const bucket of ['storage', 'spool'])
    expect(value(after, `callrec_recording_bucket_errors_total{bucket="${bucket}"}`)).toBe(0);
  for (const by of ['backoff', 'sweep'])
    expect(value(after, `callrec_recording_job_retries_total{by="${by}"}`)).toBe(0);
  expect(value(after, 'callrec_spool_bytes_in_storage')).toBe(0);

  // Every line about the call, on the media path and in its recording job, names the call and its tenant.
  const callLines = logLines.filter(
    (line) => JSON.stringify(line).includes(callId) || line.recordingId === recording.id,
  );
  expect(callLines.map((line) => line.msg)).toEqual(
    expect.arrayContaining(['call started', 'consent', 'recording queued', 'call ended', 'recording ready']),
  );
  for (const line of callLines) expect(line).toMatchObject({ callId, tenantId: ts.tenantId });
});
