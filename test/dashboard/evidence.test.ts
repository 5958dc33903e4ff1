import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { readEvidenceZip } from '../../src/evidence/package.js';
import { verifyRecording } from '../../src/evidence/verify.js';
import { readFixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { rawSql } from '../helpers/db.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';
import { launchChromium, screenshot, signIn } from './browser.js';

let ts: TestServer;
let browser: Browser;

beforeAll(async () => {
  ts = await startTestServer();
  await ts.agent('evidence-dash', {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    dual_channel: true,
    format: 'mp3',
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await ts?.close();
});

async function recordedCall(label: string): Promise<string> {
  const callId = uniqueCallId(label);
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  await replayFixture(fixture, {
    url: `${ts.wsUrl}/media/twilio`,
    agentId: 'evidence-dash',
    token: ts.key,
    callId,
    speed: 'max',
  });
  expect((await ts.recording(callId)).status).toBe('ready');
  return callId;
}

test('the call page verifies the manifest in the browser, checks the audio, and downloads a package that verifies', async () => {
  const callId = await recordedCall('dash-signed');
  const { page, context } = await signIn(browser, ts.server.url, ts.key);
  await page.goto(`${ts.server.url}/#/calls/${callId}`);
  await page.getByText('verified in this browser').waitFor();
  await page.getByRole('button', { name: 'Check the audio against the manifest' }).click();
  await page.getByText('The audio matches the manifest').waitFor();
  await screenshot(page, 'call-evidence-signed');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download evidence package' }).click(),
  ]);
  const pkg = readEvidenceZip(await fs.readFile((await download.path())!));
  expect(
    (await verifyRecording({ audio: pkg.audio, manifest: pkg.manifest, keySet: pkg.keys, ledger: pkg.ledger })).ok,
  ).toBe(true);
  await context.close();
}, 60_000);

test('a manifest changed in the database shows "Does not verify" with the reason', async () => {
  const callId = await recordedCall('dash-forged');
  const recording = (await ts.server.store.recordings.getByCall(ts.tenantId, callId))!;
  // Signed just after it is marked ready.
  let manifest = await ts.server.store.evidence.manifest(recording.id);
  while (!manifest) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    manifest = await ts.server.store.evidence.manifest(recording.id);
  }
  const { jws } = manifest;
  // Someone with database access flips "complete" in the signed payload: the signature no longer covers it.
  const [h, p, s] = jws.split('.');
  const forged = `${h}.${Buffer.from(Buffer.from(p, 'base64url').toString().replace('"complete":true', '"complete":false')).toString('base64url')}.${s}`;
  await rawSql(ts.cluster.databaseUrl, `update manifests set jws = '${forged}' where recording_id = '${recording.id}'`);
  const { page, context } = await signIn(browser, ts.server.url, ts.key);
  await page.goto(`${ts.server.url}/#/calls/${callId}`);
  await page.getByText('Does not verify').waitFor();
  expect(await page.getByRole('alert').filter({ hasText: 'Does not verify' }).textContent()).toContain(
    'the signature does not verify',
  );
  await screenshot(page, 'call-evidence-broken');
  await context.close();
}, 60_000);
