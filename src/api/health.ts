import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiDeps, ApiInstance } from './types.js';

/** Each readiness check gets this long, so `/readyz` answers within a second whatever is down. */
export const READINESS_CHECK_TIMEOUT_MS = 800;

/** Whether `check` resolves within `READINESS_CHECK_TIMEOUT_MS` (a dependency that hangs is down). */
export function passesInTime(check: Promise<unknown>): Promise<boolean> {
  const late = sleep(READINESS_CHECK_TIMEOUT_MS, false, { ref: false });
  return Promise.race([check.then(() => true, () => false), late]);
}

/**
 * `/healthz`: the process answers. `/readyz`: its dependencies answer too, each checked with
 * `passesInTime`; 503 naming those that did not. A draining node answers 503 `draining` without
 * checking anything, so the load balancer stops sending it streams at once. Without `readiness`
 * only `/healthz` is served (`/readyz` is on the internal METRICS_PORT).
 */
export function healthRoutes(app: ApiInstance, { readiness, draining }: Pick<ApiDeps, 'readiness' | 'draining'>): void {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  if (!readiness) return;

  app.get('/readyz', { config: { public: true } }, async (request, reply) => {
    if (draining?.()) return reply.code(503).send({ status: 'draining' });
    let checks: Record<string, boolean>;
    try {
      checks = await readiness();
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed');
      checks = {};
    }
    const failed = Object.keys(checks).filter((name) => !checks[name]);
    const ready = Object.keys(checks).length > 0 && failed.length === 0;
    reply.code(ready ? 200 : 503);
    return ready ? { status: 'ok', checks } : { status: 'unavailable', checks, failed };
  });
}
