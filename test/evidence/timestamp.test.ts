import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readEvidenceZip } from '../../src/evidence/package.js';
import { requestTimestamp, verifyTimestamp } from '../../src/evidence/timestamp.js';
import { verifyRecording } from '../../src/evidence/verify.js';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture } from '../../src/replay/fixture.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';
import { TsaServer } from '../helpers/tsa-server.js';

const run = promisify(execFile);

describe('RFC 3161 time-stamps against openssl ts', () => {
  let tsa: TsaServer;

  beforeAll(async () => {
    tsa = await TsaServer.start();
  });

  afterAll(async () => {
    await tsa.close();
  });

  test('a token for a hash verifies here and with openssl ts -verify; another hash does not', async () => {
    const manifest = Buffer.from('a manifest');
    const digest = createHash('sha256').update(manifest).digest();
    const before = Date.now();
    const token = await requestTimestamp(tsa.url, manifest, 5000);
    const info = await verifyTimestamp(token, manifest);
    expect(info.authority).toContain('callrec test TSA');
    expect(info.genTime.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    await expect(verifyTimestamp(token, Buffer.from('another'))).rejects.toThrow('stamps another hash');

    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-tst-'));
    await fs.writeFile(path.join(dir, 'token.der'), token);
    const { stdout } = await run('openssl', [
      'ts',
      '-verify',
      '-digest',
      digest.toString('hex'),
      '-in',
      path.join(dir, 'token.der'),
      '-token_in',
      '-CAfile',
      tsa.certFile,
    ]);
    expect(stdout).toContain('Verification: OK');
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('an authority that never answers is given up on at the timeout', async () => {
    tsa.silent = true;
    try {
      await expect(requestTimestamp(tsa.url, Buffer.alloc(32), 300)).rejects.toThrow();
    } finally {
      tsa.silent = false;
    }
  });
});

describe('TSA_URL: manifests are time-stamped apart from finalizing', () => {
  let tsa: TsaServer;
  let ts: TestServer;

  beforeAll(async () => {
    tsa = await TsaServer.start();
    ts = await startTestServer({ env: { TSA_URL: tsa.url, TSA_TIMEOUT_SECONDS: '1' } });
    await ts.agent('stamped', { enabled: true, auto_record: true, consent_prompt: false });
  });

  afterAll(async () => {
    await ts.close();
    await tsa.close();
  });

  /** Polls the manifest until the authority's token is there. */
  async function stampedManifest(callId: string): Promise<string> {
    for (;;) {
      const response = await ts.api(`/api/calls/${callId}/recording/manifest`);
      if (response.headers.get('callrec-timestamp') === 'stamped') return response.text();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  test('an authority that does not answer delays no recording; once it answers the manifest is stamped and the package verifies', async () => {
    tsa.silent = true;
    const callId = uniqueCallId('tsa');
    const fixture = await readFixture(path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'stamped',
      token: ts.key,
      callId,
      speed: 'max',
    });
    expect(await ts.recording(callId)).toMatchObject({ status: 'ready' });
    const pending = await ts.api(`/api/calls/${callId}/recording/manifest`);
    expect(pending.status).toBe(200);
    expect(pending.headers.get('callrec-timestamp')).toBe('none');

    tsa.silent = false;
    const jws = await stampedManifest(callId);
    const pkg = readEvidenceZip(new Uint8Array(await (await ts.api(`/api/calls/${callId}/evidence`)).arrayBuffer()));
    expect(pkg.timestamp).toBeDefined();
    const report = await verifyRecording({
      audio: pkg.audio,
      manifest: jws,
      keySet: pkg.keys,
      ledger: pkg.ledger,
      timestamp: pkg.timestamp,
    });
    expect(report.checks.map((c) => [c.check, c.ok])).toEqual([
      ['signature', true],
      ['audio', true],
      ['time-stamp', true],
      ['ledger', true],
    ]);
  }, 60_000);
});
