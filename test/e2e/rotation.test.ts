import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { rotateMasterKey } from '../../src/crypto/rotation.js';
import { readFixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { decodeAudio } from '../helpers/audio.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

let keyDir: string;
let before: TestServer;
let after: TestServer | undefined;

beforeAll(async () => {
  keyDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-rotation-'));
  // The master key lives in keyDir/master.key (no CALLREC_MASTER_KEY), as on a single node.
  before = await startTestServer({ env: { DATA_DIR: keyDir, CALLREC_MASTER_KEY: '' } });
  await before.agent('rotated', { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
});
afterAll(async () => {
  await after?.close();
  await before?.close();
  await fs.rm(keyDir, { recursive: true, force: true });
});

async function recordCall(ts: TestServer): Promise<string> {
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/telnyx-fork-pcma.jsonl'));
  const callId = uniqueCallId('rotation');
  await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/telnyx`,
    agentId: 'rotated',
    token: ts.key,
    callId,
    speed: 'max',
  });
  expect((await ts.recording(callId)).status).toBe('ready');
  return callId;
}

async function plays(ts: TestServer, callId: string): Promise<number> {
  const res = await ts.api(`/api/calls/${callId}/recording`);
  expect(res.status).toBe(200);
  const audio = await decodeAudio(new Uint8Array(await res.arrayBuffer()), 'wav');
  return audio.channels[0].length / audio.sampleRate;
}

test('after a master-key rotation, recordings made before and after it both play; old keys are re-wrapped', async () => {
  const old = await recordCall(before);
  const oldKeyId = (await before.server.store.recordings.getByCall(before.tenantId, old))!.keyId;

  const report = await rotateMasterKey(before.server.store, await MasterKeyring.load({ dataDir: keyDir }));
  expect(report.rotated).toMatchObject({ oldKeyId });
  expect(report.recordings).toBe(1);
  const newKeyId = report.rotated!.newKeyId;
  expect((await before.server.store.recordings.getByCall(before.tenantId, old))!.keyId).toBe(newKeyId);

  // The node that was running during the rotation picks up the new key when it first needs it.
  expect(await plays(before, old)).toBeCloseTo(2, 1);
  // A node started after the rotation loads the new key (and the retired one).
  after = await startTestServer({ join: before, env: { DATA_DIR: keyDir, CALLREC_MASTER_KEY: '' } });
  const fresh = await recordCall(after);
  expect(await plays(after, old)).toBeCloseTo(2, 1);
  expect(await plays(after, fresh)).toBeCloseTo(2, 1);
  // Nothing is left under the retired key once re-wrapped again.
  await rotateMasterKey(after.server.store, await MasterKeyring.load({ dataDir: keyDir }));
  expect(
    await after.server.store.recordings.listWrappedOutside(
      (await MasterKeyring.load({ dataDir: keyDir })).currentKeyId,
      10,
    ),
  ).toEqual([]);
});
