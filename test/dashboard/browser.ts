/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), with what the
 * dashboard tests check on every page: axe-core's findings, screenshots as artifacts, and every
 * request URL the page made.
 */
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
/** Where screenshots go (gitignored): kept after the run for a person to look at. */
export const ARTIFACTS = path.join(import.meta.dirname, '../../test-artifacts/dashboard');

export function launchChromium(): Promise<Browser> {
  // A fresh temporary profile per launch (playwright's default without launchPersistentContext).
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Every host name but the test server's fails to resolve: nothing leaves this machine (the
      // test call's Telnyx socket included), and no DNS query is made for it.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}

export interface DashboardTab {
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested, in order. */
  requests: string[];
  /** What the page logged as errors (a missing favicon, a failed request, an exception), in order. */
  consoleErrors: string[];
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** A new browser context (own sessionStorage) on the dashboard, signed in with `key`. */
export async function signIn(
  browser: Browser,
  baseUrl: string,
  key: string,
  viewport = DESKTOP,
): Promise<DashboardTab> {
  // UTC, so that the date filters' local times are the API's.
  const context = await browser.newContext({ viewport, acceptDownloads: true, timezoneId: 'UTC' });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return { context, page, requests, consoleErrors };
}

const axeSource = fs.readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol, which the page's CSP (script-src 'self') does not govern.
  await page.evaluate(await axeSource);
  const violations = (await page.evaluate(
    `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => String(n.target)) })))`,
  )) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
