import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

export interface DashboardOptions {
  /** The built dashboard (`vite build web` writes `dist/web`). */
  root: string;
  /** Telnyx test calls are configured: the page may open @telnyx/webrtc's signalling socket. */
  testCall: boolean;
}

/** The package's root (where package.json is), from source (`src/api`) and from the build (`dist/src/api`) alike. */
function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export const DASHBOARD_DIR = path.join(packageRoot(), 'dist', 'web');

/** Vite names built assets by content hash: a changed file gets a new name, so they never go stale. */
const HASHED_ASSET = /[\\/]assets[\\/][^\\/]+-[A-Za-z0-9_-]{8}\.[a-z0-9]+$/;

/** Where @telnyx/webrtc signals (its production host); media then flows peer to peer. */
const TELNYX_RTC_SOCKET = 'wss://rtc.telnyx.com';

/**
 * Everything the page loads comes from this origin. Styles allow 'unsafe-inline' because
 * wavesurfer.js draws in a shadow root with its own `<style>`; scripts stay 'self' only.
 */
function contentSecurityPolicy(testCall: boolean): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self'",
    "media-src 'self'",
    `connect-src 'self'${testCall ? ` ${TELNYX_RTC_SOCKET}` : ''}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The dashboard (SPEC §7) as static files at `/`: hashed assets cached for a year, `index.html`
 * revalidated on every load, all under a CSP that allows only this origin. Only the files the
 * build produced get routes, so unknown paths stay the API's 404s. Pages are hash-routed
 * (`/#/calls/{id}`) because paths like `/agents/{id}` are API routes.
 */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, { root, testCall }) => {
  const csp = contentSecurityPolicy(testCall);
  const secure = (reply: FastifyReply) =>
    reply
      .header('Content-Security-Policy', csp)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer');

  if (!existsSync(path.join(root, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => {
      secure(reply).code(503).type('text/plain; charset=utf-8');
      return 'The dashboard is not built. Run `npm run build` (or `npm start`, which builds it).\n';
    });
    return;
  }
  await app.register(fastifyStatic, {
    root,
    wildcard: false,
    cacheControl: false,
    setHeaders(reply: FastifyReply, file: string) {
      secure(reply).header(
        'Cache-Control',
        HASHED_ASSET.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
};
