import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import S3rver from 's3rver';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { decodeAudio, findBursts } from '../helpers/audio.js';
import { GcsTestServer } from '../helpers/gcs-server.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const BUCKET = 'callrec-e2e';

/** A bucket on a local server speaking the provider's API, which the test can take down for a while. */
interface Bucket {
  env: Record<string, string>;
  /** Takes the bucket down at the next upload (mid-upload where the server can), for `forMs`. */
  outage(forMs: number): void;
  objectNames(): Promise<string[]>;
  close(): Promise<void>;
}

const BUCKETS: Record<string, () => Promise<Bucket>> = {
  async gcs() {
    const server = await GcsTestServer.start([BUCKET]);
    return {
      env: { STORAGE_URL: `gs://${BUCKET}/calls`, STORAGE_ENDPOINT: server.endpoint },
      outage(forMs) {
        // The connection drops 1 KiB into the upload, then the server refuses connections.
        server.dropUploadAt(1024, 'refuse');
        setTimeout(() => void server.recover(), forMs);
      },
      objectNames: async () => server.objectNames(BUCKET),
      close: () => server.close(),
    };
  },

  async s3() {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-e2e-s3-'));
    const server = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory: dir,
      configureBuckets: [{ name: BUCKET }],
    });
    let downUntil = 0;
    // While "down" every request has its connection dropped, as a stopped server would.
    server.middleware.unshift(async (ctx, next) => {
      if (Date.now() < downUntil) return void ctx.req.socket.destroy();
      await next();
    });
    const { port } = await server.run();
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    return {
      env: { STORAGE_URL: `s3://${BUCKET}/calls`, STORAGE_ENDPOINT: `http://127.0.0.1:${port}` },
      outage(forMs) {
        downUntil = Date.now() + forMs;
      },
      async objectNames() {
        const files = await fs.readdir(path.join(dir, BUCKET), { recursive: true });
        return files.filter((f) => f.endsWith('.enc._S3rver_object'));
      },
      async close() {
        server.httpServer.closeAllConnections();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
};

let fixture: Fixture;
beforeAll(async () => {
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
});

describe.each(Object.keys(BUCKETS))('the whole pipeline into %s', (name) => {
  let bucket: Bucket;
  let ts: TestServer;
  beforeAll(async () => {
    bucket = await BUCKETS[name]();
    ts = await startTestServer({ env: bucket.env });
    await ts.agent('bucketed', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      dual_channel: true,
      format: 'wav',
    });
  });
  afterAll(async () => {
    await ts?.close();
    await bucket?.close();
  });

  test('a bucket down for a while mid-upload: the recording arrives once, whole', async () => {
    bucket.outage(3000);
    const callId = uniqueCallId(name);
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'bucketed',
      token: ts.key,
      callId,
      speed: 'max',
    });
    await sleep(500);
    expect((await ts.server.store.recordings.getByCall(ts.tenantId, callId))?.status).toBe('processing');
    const rec = await ts.recording(callId, 40_000);
    expect(rec).toMatchObject({ status: 'ready', storageUrl: bucket.env.STORAGE_URL });
    expect(rec.attempts).toBeGreaterThan(1);
    // Once: one audio object and, beside it, its waveform peaks.
    const names = await bucket.objectNames();
    expect(names.filter((n) => n.includes(`${rec.id}.wav.enc`))).toHaveLength(1);
    expect(names.filter((n) => n.includes(`${rec.id}.peaks.json.enc`))).toHaveLength(1);
    expect(names).toHaveLength(2);
    const res = await ts.api(`/api/calls/${callId}/recording`);
    const audio = await decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
    expect(findBursts(audio.channels[0], audio.sampleRate, 1000)).toHaveLength(
      fixture.meta.bursts.filter((b) => b.leg === 'caller').length,
    );
  }, 60_000);
});
