import { execFile } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { compactVerify, createLocalJWKSet } from 'jose';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { auditLedgers } from '../../src/evidence/audit.js';
import { Evidence } from '../../src/evidence/index.js';
import type { KeySet } from '../../src/evidence/keys.js';
import { OPENSSL_RECIPE, readEvidenceZip } from '../../src/evidence/package.js';
import { verifyRecording } from '../../src/evidence/verify.js';
import { readFixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { createStore, type Store } from '../../src/store/index.js';
import { createTestStore, rawSql, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A call of tenant `t1` with a ready recording whose audio is `audio` (only its hash and size matter to the ledger). */
async function readyRecording(store: Store, callId: string, audio: Buffer) {
  await store.tenants.ensure('t1', 'One');
  await store.calls.create({
    tenantId: 't1',
    id: callId,
    agentId: 'agent-1',
    provider: 'twilio',
    mode: 'fork',
    sampleRate: 8000,
    legs: ['caller', 'agent'],
    settings: CALL_RECORDING_DEFAULTS,
  });
  await store.calls.update('t1', callId, {
    status: 'ended',
    endedAt: new Date().toISOString(),
    consent: { mode: 'one_party', outcome: 'announced', message: 'This call may be recorded.' },
  });
  const recording = await store.recordings.create({
    tenantId: 't1',
    callId,
    format: 'wav',
    channels: 2,
    sampleRate: 8000,
    storageDays: 90,
  });
  return (await store.recordings.update(recording.id, {
    status: 'ready',
    sha256: createHash('sha256').update(audio).digest('hex'),
    byteSize: audio.length,
    durationMs: 1000,
    readyAt: new Date().toISOString(),
  }))!;
}

describe.each(TEST_DB_KINDS)('evidence on %s', (kind) => {
  let db: TestStore;
  let dir: string;
  let evidence: Evidence;

  beforeAll(async () => {
    db = await createTestStore(kind);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-evidence-'));
    evidence = new Evidence(db.store, await MasterKeyring.load({ dataDir: dir }));
  });

  afterAll(async () => {
    await db.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('a manifest verifies with jose and with openssl, and names the audio', async () => {
    const audio = Buffer.from('RIFF…the audio');
    const recording = await readyRecording(db.store, uniqueCallId('signed'), audio);
    const jws = await evidence.seal(recording);
    expect(await evidence.seal(recording)).toBe(jws); // a retried job keeps the first manifest

    const keySet = await evidence.keys.keySet();
    const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(keySet as never));
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', kid: keySet.keys[0].kid });
    const manifest = JSON.parse(new TextDecoder().decode(payload));
    expect(manifest).toMatchObject({
      recording_id: recording.id,
      tenant_id: 't1',
      channels: 2,
      channel_parties: ['caller', 'agent'],
      audio: { format: 'wav', sha256: recording.sha256, byte_size: audio.length },
      consent: { outcome: 'announced' },
    });

    // Stock tools: the JWS signing input and signature, the JWK as a PEM key, `openssl pkeyutl -verify`.
    const [h, p, s] = jws.split('.');
    await fs.writeFile(path.join(dir, 'input'), `${h}.${p}`);
    await fs.writeFile(path.join(dir, 'sig'), Buffer.from(s, 'base64url'));
    const jwk = keySet.keys.find((k) => k.kid === protectedHeader.kid)!;
    await fs.writeFile(
      path.join(dir, 'key.pem'),
      createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      }),
    );
    const openssl = (input: string) =>
      run('openssl', [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        path.join(dir, 'key.pem'),
        '-rawin',
        '-in',
        input,
        '-sigfile',
        path.join(dir, 'sig'),
      ]);
    expect((await openssl(path.join(dir, 'input'))).stdout).toContain('Signature Verified Successfully');
    await fs.writeFile(path.join(dir, 'input2'), `${h}.${p}x`);
    await expect(openssl(path.join(dir, 'input2'))).rejects.toThrow();
  });

  test('one changed byte of audio, one changed field of the manifest: verify says which', async () => {
    const audio = Buffer.from('the original audio');
    const recording = await readyRecording(db.store, uniqueCallId('tamper'), audio);
    const jws = await evidence.seal(recording);
    const keySet = await evidence.keys.keySet();
    expect((await verifyRecording({ audio, manifest: jws, keySet })).ok).toBe(true);

    const changed = Buffer.from(audio);
    changed[3] ^= 1;
    const badAudio = await verifyRecording({ audio: changed, manifest: jws, keySet });
    expect(badAudio.ok).toBe(false);
    expect(badAudio.checks.find((c) => c.check === 'audio')).toMatchObject({ ok: false });

    const [h, p, s] = jws.split('.');
    const forged = JSON.parse(Buffer.from(p, 'base64url').toString());
    forged.complete = !forged.complete;
    const badManifest = await verifyRecording({
      audio,
      manifest: `${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`,
      keySet,
    });
    expect(badManifest.checks[0]).toMatchObject({
      check: 'signature',
      ok: false,
      detail: expect.stringContaining('does not verify'),
    });
  });

  test('key rotation keeps old manifests verifying; a deletion leaves a verifiable tombstone; the audit holds', async () => {
    const old = await readyRecording(db.store, uniqueCallId('old-key'), Buffer.from('a'));
    const oldJws = await evidence.seal(old);
    const kid = await evidence.keys.rotate();
    const fresh = await readyRecording(db.store, uniqueCallId('new-key'), Buffer.from('b'));
    const freshJws = await evidence.seal(fresh);
    const keySet = await evidence.keys.keySet();
    expect((await verifyRecording({ audio: Buffer.from('a'), manifest: oldJws, keySet })).ok).toBe(true);
    expect((await verifyRecording({ audio: Buffer.from('b'), manifest: freshJws, keySet })).kid).toBe(kid);

    const { tombstone } = await db.store.recordings.delete(
      't1',
      old.callId,
      { delete: async () => {} },
      { deletedBy: 'key-1', reason: 'api' },
    );
    await evidence.recordDeletion(tombstone);
    await evidence.recordAccess('t1', {
      recording_id: fresh.id,
      call_id: fresh.callId,
      key_id: 'key-1',
      format: 'wav',
      range: null,
      ip: '127.0.0.1',
      purpose: 'read',
      at: new Date().toISOString(),
    });
    expect(await auditLedgers(db.store, { tenantId: 't1' })).toEqual([
      { tenantId: 't1', entries: expect.any(Number), error: null },
    ]);
  });

  test('recordings finalized before manifests existed are signed, marked as signed later', async () => {
    const earlier = await readyRecording(db.store, uniqueCallId('earlier'), Buffer.from('old audio'));
    expect(await evidence.signBacklog()).toBeGreaterThanOrEqual(1);
    const { jws } = (await db.store.evidence.manifest(earlier.id))!;
    const report = await verifyRecording({
      audio: Buffer.from('old audio'),
      manifest: jws,
      keySet: await evidence.keys.keySet(),
    });
    expect(report.ok).toBe(true);
    expect(report.manifest).toMatchObject({ recording_id: earlier.id, signed_later: true });
    expect(await evidence.signBacklog()).toBe(0);
  });

  test('two nodes appending at once keep one unbroken chain', async () => {
    // A second store on the same database is a second node.
    const other = await createStore(db.url);
    try {
      const second = new Evidence(other, await MasterKeyring.load({ dataDir: dir }));
      const recordings = await Promise.all(
        Array.from({ length: 20 }, (_, i) => readyRecording(db.store, uniqueCallId(`race-${i}`), Buffer.from([i]))),
      );
      await Promise.all(recordings.map((r, i) => (i % 2 ? evidence : second).seal(r)));
      const [audit] = await auditLedgers(db.store, { tenantId: 't1' });
      expect(audit.error).toBeNull();
    } finally {
      await other.close();
    }
  });

  test("a ledger entry changed, removed or a recording removed behind callrec's back is found", async () => {
    const recording = await readyRecording(db.store, uniqueCallId('victim'), Buffer.from('v'));
    await evidence.seal(recording);
    await evidence.recordAccess('t1', {
      recording_id: recording.id,
      call_id: recording.callId,
      key_id: 'key-1',
      format: 'wav',
      range: null,
      ip: '127.0.0.1',
      purpose: 'read',
      at: new Date().toISOString(),
    });
    const [entry] = await db.store.evidence.entriesFor('t1', recording.id);
    const sql = (text: string) => rawSql(db.url, text);
    // Changed: the access entry's ip rewritten.
    const access = (await db.store.evidence.entriesFor('t1', recording.id)).find((e) => e.kind === 'access')!;
    await sql(
      `update ledger set entry = replace(entry, '127.0.0.1', '10.0.0.1') where tenant_id = 't1' and seq = ${access.seq}`,
    );
    expect((await auditLedgers(db.store, { tenantId: 't1' }))[0].error).toMatch(
      new RegExp(`entry ${access.seq}: changed`),
    );
    await sql(
      `update ledger set entry = replace(entry, '10.0.0.1', '127.0.0.1') where tenant_id = 't1' and seq = ${access.seq}`,
    );
    // Removed: the manifest's own entry.
    const row = await db.store.evidence.entry('t1', entry.seq);
    await sql(`delete from ledger where tenant_id = 't1' and seq = ${entry.seq}`);
    expect((await auditLedgers(db.store, { tenantId: 't1' }))[0].error).toMatch(
      new RegExp(`entry ${entry.seq}: found entry ${entry.seq + 1}`),
    );
    const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;
    await sql(
      `insert into ledger (tenant_id, seq, kind, ref, entry, hash) values ('t1', ${row!.seq}, ${quote(row!.kind)}, ${quote(row!.ref)}, ${quote(row!.entry)}, ${quote(row!.hash)})`,
    );
    // Re-inserted in place; then the recording itself removed without a tombstone.
    expect((await auditLedgers(db.store, { tenantId: 't1' }))[0].error).toBeNull();
    await sql(`delete from recordings where id = '${recording.id}'`);
    expect((await auditLedgers(db.store, { tenantId: 't1' }))[0].error).toMatch(
      `recording ${recording.id} was removed without a tombstone`,
    );
  });
});

describe('evidence over the API', () => {
  let ts: TestServer;

  beforeAll(async () => {
    ts = await startTestServer();
    await ts.agent('evidence-agent', {
      enabled: true,
      auto_record: true,
      consent_prompt: false,
      dual_channel: true,
      format: 'wav',
    } as never);
  });

  afterAll(async () => {
    await ts?.close();
  });

  test('a recorded call has a manifest; its evidence package verifies offline with the server stopped', async () => {
    // Published from the first start, before anything is signed with it.
    expect(
      ((await (await fetch(`${ts.server.url}/.well-known/callrec-keys.json`)).json()) as KeySet).keys,
    ).toHaveLength(1);
    const callId = uniqueCallId('evidence');
    const fixture = await readFixture(path.join(ROOT, 'fixtures/twilio-fork-tones.jsonl'));
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: 'evidence-agent',
      token: ts.key,
      callId,
      speed: 'max',
    });
    expect(await ts.recording(callId)).toMatchObject({ status: 'ready' });

    const keys = (await (await fetch(`${ts.server.url}/.well-known/callrec-keys.json`)).json()) as KeySet;
    expect(keys.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    // Signed just after it is marked ready.
    let manifest = await ts.api(`/api/calls/${callId}/recording/manifest`);
    while (manifest.status === 404) manifest = await ts.api(`/api/calls/${callId}/recording/manifest`);
    expect(manifest.headers.get('content-type')).toBe('application/jose');
    const jws = await manifest.text();
    const audio = Buffer.from(await (await ts.api(`/api/calls/${callId}/recording`)).arrayBuffer());
    expect((await verifyRecording({ audio, manifest: jws, keySet: keys })).ok).toBe(true);

    const zipResponse = await ts.api(`/api/calls/${callId}/evidence`);
    expect(zipResponse.status).toBe(200);
    const zipFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-evidence-zip-')), 'evidence.zip');
    await fs.writeFile(zipFile, Buffer.from(await zipResponse.arrayBuffer()));
    const pkg = readEvidenceZip(await fs.readFile(zipFile));
    expect(pkg.audio).toEqual(new Uint8Array(audio));

    // The stock-tools recipe of VERIFY.txt and docs/evidence.md, run as written on the unpacked package.
    const unpacked = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-evidence-unpacked-'));
    await fs.writeFile(path.join(unpacked, pkg.audioName), pkg.audio);
    await fs.writeFile(path.join(unpacked, 'manifest.jws'), pkg.manifest);
    const kid = JSON.parse(Buffer.from(pkg.manifest.split('.')[0], 'base64url').toString()).kid;
    const stock = await run('bash', ['-e', '-c', OPENSSL_RECIPE], {
      cwd: unpacked,
      env: { PATH: process.env.PATH, X: pkg.keys.keys.find((k) => k.kid === kid)!.x },
    });
    expect(stock.stdout).toContain('Signature Verified Successfully');
    const sha = createHash('sha256').update(pkg.audio).digest('hex');
    expect(stock.stdout).toContain(`${sha}  ${pkg.audioName}`);
    expect(stock.stdout).toContain(`"sha256":"${sha}"`);
    expect(await fs.readFile(path.join(ROOT, 'docs/evidence.md'), 'utf8')).toContain(OPENSSL_RECIPE);
    await fs.rm(unpacked, { recursive: true, force: true });

    await ts.close();
    ts = undefined as never;

    // The CLI, from source, with nothing but the file: no database, no server, no configuration.
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH },
      });
    const { stdout } = await cli('verify', zipFile);
    expect(stdout).toContain('VERIFIED');
    expect(stdout).toMatch(/accessed .* \(read\)/);
    // One byte changed in the package's audio: exit 1, saying what.
    const tampered = Buffer.from(pkg.audio);
    tampered[tampered.length - 1] ^= 1;
    await fs.writeFile(path.join(os.tmpdir(), `${callId}.wav`), tampered);
    await fs.writeFile(path.join(os.tmpdir(), `${callId}.jws`), pkg.manifest);
    await fs.writeFile(path.join(os.tmpdir(), `${callId}.keys.json`), JSON.stringify(pkg.keys));
    await expect(
      cli(
        'verify',
        path.join(os.tmpdir(), `${callId}.wav`),
        path.join(os.tmpdir(), `${callId}.jws`),
        '--keys',
        path.join(os.tmpdir(), `${callId}.keys.json`),
      ),
    ).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('FAIL audio') });
  });
});
