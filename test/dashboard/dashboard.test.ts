import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify from 'fastify';
import type { Browser, Locator, Page } from 'playwright-core';
import { dashboardPlugin } from '../../src/api/dashboard.js';
import { readFixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';
import { PHONE, launchChromium, screenshot, seriousViolations, signIn } from './browser.js';

const AGENT = 'dash-agent';

let ts: TestServer;
let browser: Browser;
/** Recorded dual-channel calls: one to play, one to hold and delete. */
let played: string;
let deleted: string;

beforeAll(async () => {
  ts = await startTestServer();
  await ts.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'mp3' });
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  played = uniqueCallId('dash-play');
  deleted = uniqueCallId('dash-delete');
  for (const callId of [played, deleted]) {
    await replayFixture(fixture, {
      url: `${ts.wsUrl}/media/twilio`,
      agentId: AGENT,
      token: ts.key,
      callId,
      speed: 'max',
    });
    expect((await ts.recording(callId)).status).toBe('ready');
  }
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await ts?.close();
});

/**
 * Waits until the page's `<audio>` is between `min` and `max` seconds. A function, not a string:
 * the page's CSP forbids eval, which Playwright uses for string predicates.
 */
async function audioTimeBetween(page: Page, min: number, max = Infinity): Promise<number> {
  const handle = await page.waitForFunction(
    ([lo, hi]) => {
      const time = (
        globalThis as unknown as { document: { querySelector(s: string): { currentTime: number } } }
      ).document.querySelector('audio').currentTime;
      return time > lo && time < hi ? time : false;
    },
    [min, max],
  );
  return (await handle.jsonValue()) as number;
}

describe('served by callrec', () => {
  test('index.html is revalidated, hashed assets are immutable, everything under a same-origin CSP', async () => {
    const index = await fetch(`${ts.server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/https?:|wss:/);
    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/);
    for (const asset of assets) {
      const res = await fetch(ts.server.url + asset);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    // Only built files are routes: the API's 404 answers the rest.
    const unknown = await fetch(`${ts.server.url}/no-such-page`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()) as unknown).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
  });

  test('a server whose dashboard was not built says how to build it', async () => {
    const app = Fastify();
    await app.register(dashboardPlugin, { root: path.join(ts.dataDir, 'no-build-here'), testCall: false });
    const res = await fetch(`${await app.listen({ port: 0, host: '127.0.0.1' })}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    await app.close();
  });
});

describe('in Chromium', () => {
  test('pages load without a console error: the favicon is served, nothing is missing', async () => {
    const { page, context, requests, consoleErrors } = await signIn(browser, ts.server.url, ts.key);
    await page.getByRole('heading', { name: 'Call Logs' }).waitFor();
    await page.getByRole('row').filter({ hasText: played }).waitFor();
    await page.goto(`${ts.server.url}/#/agents/${AGENT}`);
    await page.getByRole('heading', { name: 'Voice Settings' }).waitFor();
    await page.goto(`${ts.server.url}/#/calls/${played}`);
    await page.getByText('Caller', { exact: true }).waitFor();
    expect(requests).toContain(`${ts.server.url}/favicon.svg`);
    expect((await fetch(`${ts.server.url}/favicon.svg`)).headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(consoleErrors).toEqual([]);
    await context.close();
  });

  test('a wrong key is refused and says so; Sign out forgets the key', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${ts.server.url}/`);
    await page.getByLabel('API key').fill('crk_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectText(page.getByRole('alert'), /not accepted/);
    await context.close();

    const tab = await signIn(browser, ts.server.url, ts.key);
    expect(await tab.page.evaluate('Object.values(sessionStorage)')).toEqual([ts.key]);
    await tab.page.getByRole('button', { name: 'Sign out' }).click();
    await tab.page.getByLabel('API key').waitFor();
    expect(await tab.page.evaluate('sessionStorage.length')).toBe(0);
    await tab.context.close();
  });

  test('Call Logs → the call → Play, seek on the waveform, two lanes, Download; the key is in no URL', async () => {
    // As a call with a consent prompt and a pause would have them: the file begins where the prompt
    // ended (2 s on the call's clock); the pause is 1.0–1.5 s into the file.
    const consent = {
      ...(await ts.server.store.calls.get(ts.tenantId, played))!.consent,
      prompt_started_ms: 0,
      prompt_ended_ms: 2000,
    };
    const pauses = [{ paused_at_ms: 3000, resumed_at_ms: 3500, behavior: 'silence', recording_offset_ms: 1000 }];
    await ts.server.store.calls.update(ts.tenantId, played, { consent, pauses });
    const { page, context, requests } = await signIn(browser, ts.server.url, ts.key);
    const recordingResponses: number[] = [];
    page.on('response', (res) => {
      if (/\/recording\?/.test(res.url())) recordingResponses.push(res.status());
    });
    await page.getByRole('heading', { name: 'Call Logs' }).waitFor();
    const reference = await page.getByRole('link', { name: 'API reference' }).getAttribute('href');
    expect(reference).toBe('/docs');
    expect((await fetch(ts.server.url + reference)).status).toBe(200);
    const row = page.getByRole('row').filter({ hasText: played });
    await row.waitFor();
    // Values in words: the recording's status, and consent as the call settled it (no prompt configured).
    expect(await row.textContent()).toContain('Ready');
    expect(await row.textContent()).toContain('Not required');
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'call-logs');

    await row.getByRole('link', { name: played }).click();
    expect(page.url()).toBe(`${ts.server.url}/#/calls/${played}`);
    await page.getByText('Caller', { exact: true }).waitFor();
    await page.getByText('Agent', { exact: true }).first().waitFor();
    await page.locator('.surface canvas').first().waitFor();
    // The recording says it holds the whole call.
    expect(
      await page
        .locator('.metadata div')
        .filter({ hasText: /^Complete/ })
        .locator('dd')
        .textContent(),
    ).toBe('yes');
    // Marked on the timeline (wavesurfer's regions, in its shadow root, which locators pierce).
    await page.locator('.surface').getByText('Consent prompt (before recording)').waitFor();
    await page.locator('.surface').getByText('Paused', { exact: true }).waitFor();
    // The pause is a span from 1.0 s to 1.5 s of the 6 s file, not a mark clamped to its start.
    const pauseStyle = await page.locator('.surface [part~="region"]').getAttribute('style');
    expect(pauseStyle).toMatch(/left: 16\.6\d*%/);

    await page.getByRole('button', { name: 'Play' }).click();
    await audioTimeBetween(page, 0.3);
    await page.getByRole('button', { name: 'Pause' }).waitFor();

    const duration = (await page.evaluate("document.querySelector('audio').duration")) as number;
    const before = recordingResponses.length;
    await page.locator('.surface').click();
    // Playback goes on from the middle: past it, and still moving.
    const fromMiddle = await audioTimeBetween(page, duration / 2 - 0.5, duration / 2 + 2);
    await audioTimeBetween(page, fromMiddle + 0.2);
    expect(recordingResponses).toContain(206);
    expect(recordingResponses.slice(before).every((status) => status === 206)).toBe(true);
    await page.getByRole('button', { name: 'Pause' }).click();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'call');

    await page.getByLabel('Format').selectOption('mp3');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download', exact: true }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`${played}.mp3`);
    const saved = await fs.readFile((await download.path())!);
    const expected = Buffer.from(await (await ts.api(`/api/calls/${played}/recording?format=mp3`)).arrayBuffer());
    expect(saved.length).toBeGreaterThan(1000);
    expect(saved.equals(expected)).toBe(true);

    // A shared link opens the same call in a new tab of the same session.
    await page.reload();
    await page.getByRole('heading', { name: new RegExp(played) }).waitFor();

    expect(requests.filter((url) => url.includes(ts.key))).toEqual([]);
    expect(requests.some((url) => url.includes('/recording?') && url.includes('token='))).toBe(true);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  test('at 390 px every page fits the screen, and the call page still plays and downloads', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key, PHONE);
    // Nothing wider than the screen: the calls table scrolls inside its own box.
    const fits = async () =>
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    await page.getByRole('row').filter({ hasText: played }).waitFor();
    await fits();
    await screenshot(page, 'call-logs-390px');
    await page.goto(`${ts.server.url}/#/calls/${played}`);
    await page.getByRole('button', { name: 'Play' }).waitFor();
    await page.getByRole('button', { name: 'Download', exact: true }).waitFor();
    await page.locator('.surface canvas').first().waitFor();
    await fits();
    await screenshot(page, 'call-390px');
    await page.goto(`${ts.server.url}/#/agents/${AGENT}`);
    await page.getByRole('heading', { name: 'Voice Settings' }).waitFor();
    await fits();
    await screenshot(page, 'voice-settings-390px');
    await context.close();
  });

  test('keyboard only: reach a call from Call Logs, play it, seek from the keyboard', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    const tabTo = async (target: Locator) => {
      for (let presses = 0; presses < 60; presses++) {
        await page.keyboard.press('Tab');
        if (await target.evaluate((el) => el.matches(':focus'))) return;
      }
      throw new Error('Tab never reached the element');
    };
    await tabTo(page.getByRole('link', { name: played }));
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: new RegExp(played) }).waitFor();
    await tabTo(page.getByRole('button', { name: 'Play' }));
    await page.keyboard.press('Space');
    await audioTimeBetween(page, 0.2);
    await page.keyboard.press('Space');
    await page.getByRole('button', { name: 'Play' }).waitFor();
    const paused = await audioTimeBetween(page, 0.2);
    await tabTo(page.getByLabel('Position'));
    await page.keyboard.press('End');
    await audioTimeBetween(page, paused + 2);
    await context.close();
  });

  test('Voice Settings: saved settings survive a reload and the API agrees; storage 0 is refused beside the field', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('link', { name: AGENT }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'agents');
    await page.getByRole('link', { name: AGENT }).click();
    await page.getByRole('heading', { name: 'Voice Settings' }).waitFor();
    expect(await page.getByLabel('Auto-record').isChecked()).toBe(true);
    expect(await page.getByLabel('Consent message').inputValue()).toBe(
      'This call may be recorded for quality purposes.',
    );

    await page.getByLabel('Auto-record').uncheck();
    await page.getByLabel('Keep recordings (days)').fill('30');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Voice Settings' }).waitFor();
    expect(await page.getByLabel('Auto-record').isChecked()).toBe(false);
    expect(await page.getByLabel('Keep recordings (days)').inputValue()).toBe('30');
    const agent = (await (await ts.api(`/agents/${AGENT}`)).json()) as {
      voice_tools: { call_recording: Record<string, unknown> };
    };
    expect(agent.voice_tools.call_recording).toMatchObject({ auto_record: false, storage_days: 30 });
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'voice-settings');

    // The range is stated before it is enforced, and the API's 400 is told in words naming the field.
    expect(await page.locator('#setting-storage_days-hint').textContent()).toBe(
      'Keep recordings for 1–3650 days, then delete them.',
    );
    await page.getByLabel('Keep recordings (days)').fill('0');
    await page.getByRole('button', { name: 'Save' }).click();
    const fieldError = page.locator('#setting-storage_days-error');
    await fieldError.waitFor();
    expect(await fieldError.textContent()).toBe('Keep recordings (days) must be a whole number from 1 to 3650.');
    expect(await page.getByLabel('Keep recordings (days)').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Keep recordings (days)').getAttribute('aria-describedby')).toContain(
      'setting-storage_days-error',
    );
    const after = (await (await ts.api(`/agents/${AGENT}`)).json()) as typeof agent;
    expect(after.voice_tools.call_recording.storage_days).toBe(30);
    await screenshot(page, 'voice-settings-error');
    await context.close();
  });

  test('a key without recordings:read sees no player and no download, and is told why', async () => {
    const { secret } = await ts.server.store.keys.create({
      tenantId: ts.tenantId,
      name: 'settings-only',
      scopes: ['agents:write'],
    });
    const { page, context } = await signIn(browser, ts.server.url, secret);
    await expectText(page.locator('.notice'), /recordings:read/);
    await page.goto(`${ts.server.url}/#/calls/${played}`);
    await expectText(page.locator('.notice'), /No player and no download.*recordings:read/);
    expect(await page.getByRole('button', { name: 'Play' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Download', exact: true }).count()).toBe(0);
    await context.close();
  });

  test('Delete asks first; legal hold refuses it with a message; released, it deletes', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    await page.goto(`${ts.server.url}/#/calls/${deleted}`);
    await page.getByLabel('Reason for the legal hold').fill('litigation 42');
    await page.getByRole('button', { name: 'Place legal hold' }).click();
    await page.getByRole('button', { name: 'Release legal hold' }).waitFor();

    await page.getByRole('button', { name: 'Delete recording' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this recording?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await dialog.isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Delete recording' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expectText(page.getByRole('alert'), /legal hold/);
    expect((await ts.server.store.recordings.getByCall(ts.tenantId, deleted))?.status).toBe('ready');

    await page.getByLabel('Reason for releasing the hold').fill('case closed');
    await page.getByRole('button', { name: 'Release legal hold' }).click();
    await page.getByRole('button', { name: 'Place legal hold' }).waitFor();
    await page.getByRole('button', { name: 'Delete recording' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No playable recording (deleted).').waitFor();
    expect((await ts.server.store.recordings.getByCall(ts.tenantId, deleted))?.status).toBe('deleted');
    await context.close();
  });

  test('a live call shows in Call Logs as live, and as ended without a reload', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    const callId = uniqueCallId('dash-live');
    await ts.server.store.calls.create({
      tenantId: ts.tenantId,
      id: callId,
      agentId: AGENT,
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: (await ts.server.store.calls.get(ts.tenantId, played))!.settings,
    });
    const row = page.getByRole('row').filter({ hasText: callId });
    await expectText(row, /Live/);
    await ts.server.store.calls.update(ts.tenantId, callId, {
      status: 'ended',
      endedAt: new Date().toISOString(),
      endReason: 'hangup',
    });
    await row.filter({ hasNotText: /Live/ }).waitFor();
    await context.close();
  });
});

/** Waits until the locator's text matches. */
async function expectText(locator: Locator, pattern: RegExp): Promise<void> {
  await locator.filter({ hasText: pattern }).first().waitFor();
}

describe('Call Logs with a thousand calls', () => {
  // The second test finds one of the calls the first one adds.
  test('pages through them newest first with no call twice; agent, date range and status filters narrow them', async () => {
    const agentId = 'bulk-agent';
    const settings = (await ts.server.store.calls.get(ts.tenantId, played))!.settings;
    const start = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 1000; i++) {
      const startedAt = new Date(start + i * 60_000).toISOString();
      await ts.server.store.calls.create({
        tenantId: ts.tenantId,
        id: `bulk-${String(i).padStart(4, '0')}`,
        agentId,
        provider: 'telnyx',
        mode: 'fork',
        sampleRate: 8000,
        legs: ['caller'],
        settings,
        startedAt,
      });
    }
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    await page.getByLabel('Agent').fill(agentId);
    await page.getByLabel('Agent').press('Enter');
    // The unfiltered list also shows 100 calls: wait for the filtered one (its newest call first).
    await expectText(page.locator('table.calls tbody tr:first-child td:nth-child(2)'), /^bulk-0999$/);
    await page.getByText('100 calls shown').waitFor();
    for (let shown = 200; shown <= 1000; shown += 100) {
      await page.getByRole('button', { name: 'Load more' }).click();
      await page.getByText(`${shown} calls shown`).waitFor();
    }
    const ids = await page.locator('table.calls tbody tr td:nth-child(2)').allTextContents();
    expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => `bulk-${String(999 - i).padStart(4, '0')}`));
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);

    // A date range (from inclusive, to exclusive) narrows them; a status none of them has empties the list.
    await page.getByLabel('From').fill('2026-01-01T00:05');
    await page.getByLabel('To').fill('2026-01-01T00:10');
    await page.getByText('5 calls shown').waitFor();
    expect(await page.locator('table.calls tbody tr td:nth-child(2)').allTextContents()).toEqual([
      'bulk-0009',
      'bulk-0008',
      'bulk-0007',
      'bulk-0006',
      'bulk-0005',
    ]);
    await page.getByLabel('Status').selectOption('ready');
    await page.getByText('No calls match.').waitFor();
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('row').filter({ hasText: played }).waitFor();
    await context.close();
  });

  test('Find call opens a call by its id, and says so when there is none', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    await page.getByLabel('Call id').fill('no-such-call');
    await page.getByRole('button', { name: 'Find call' }).click();
    await expectText(page.getByRole('alert'), /No call with id no-such-call/);
    await page.getByLabel('Call id').fill('bulk-0042');
    await page.getByRole('button', { name: 'Find call' }).click();
    await page.getByRole('heading', { name: /bulk-0042/ }).waitFor();
    expect(page.url()).toBe(`${ts.server.url}/#/calls/bulk-0042`);
    await context.close();
  });
});

describe('Test call', () => {
  const OPERATOR = randomBytes(32).toString('base64url');
  let configured: TestServer;
  let telnyx: http.Server;
  beforeAll(async () => {
    // Telnyx's token endpoint, standing in on this machine: it answers a login token as text.
    telnyx = http.createServer((_req, res) =>
      res.writeHead(201, { 'content-type': 'text/plain' }).end('eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln'),
    );
    await new Promise<void>((resolve) => telnyx.listen(0, '127.0.0.1', resolve));
    const { port } = telnyx.address() as AddressInfo;
    configured = await startTestServer({
      env: {
        CALLREC_API_KEY: OPERATOR,
        TELNYX_API_KEY: 'KEYstand-in',
        TELNYX_CREDENTIAL_ID: 'cred-1',
        TELNYX_TEST_NUMBER: '+15550100200',
        TELNYX_API_URL: `http://127.0.0.1:${port}`,
      },
    });
  });
  afterAll(async () => {
    await configured?.close();
    await new Promise((resolve) => telnyx?.close(resolve));
  });

  test('hidden when Telnyx is not configured', async () => {
    const { page, context } = await signIn(browser, ts.server.url, ts.key);
    await page.getByRole('heading', { name: 'Call Logs' }).waitFor();
    expect(await page.getByRole('button', { name: 'Test call' }).count()).toBe(0);
    await context.close();
  });

  test('offered when configured: the browser gets a login token, builds the client, and says plainly when Telnyx cannot be reached', async () => {
    const index = await fetch(`${configured.server.url}/`);
    expect(index.headers.get('content-security-policy')).toContain("connect-src 'self' wss://rtc.telnyx.com");
    // Only the operator may make a test call (it dials on the operator's Telnyx account).
    const { page, context } = await signIn(browser, configured.server.url, OPERATOR);
    const token = page.waitForResponse((res) => res.url().endsWith('/api/test-call/token'));
    await page.getByRole('button', { name: 'Test call' }).click();
    expect((await token).status()).toBe(200);
    await expectText(page.getByRole('alert'), /^Test call failed: .*Telnyx/);
    await page.getByRole('button', { name: 'Test call' }).waitFor();
    await context.close();
  });
});
