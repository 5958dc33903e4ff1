import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { StringEnum } from '../schemas.js';
import type { ApiDeps, ApiInstance } from './types.js';

/** Each readiness check gets this long, so `/readyz` answers within a second whatever is down. */
export const READINESS_CHECK_TIMEOUT_MS = 800;

/** Whether `check` resolves within `READINESS_CHECK_TIMEOUT_MS` (a dependency that hangs is down). */
export async function passesInTime(check: Promise<unknown>): Promise<boolean> {
  const settled = new AbortController();
  const late = sleep(READINESS_CHECK_TIMEOUT_MS, false, { signal: settled.signal }).catch(() => false);
  try {
    return await Promise.race([
      check.then(
        () => true,
        () => false,
      ),
      late,
    ]);
  } finally {
    settled.abort(); // the timer goes with the check
  }
}

const Checks = Type.Object(
  {},
  {
    additionalProperties: Type.Boolean(),
    description: 'each dependency (db, redis, storage, spool_disk…): whether it answered',
  },
);

const Ready = Type.Object({ status: Type.Literal('ok'), checks: Checks });

const NotReady = Type.Object({
  status: StringEnum(['unavailable', 'draining']),
  checks: Type.Optional(Checks),
  failed: Type.Optional(Type.Array(Type.String(), { description: 'the checks that did not pass' })),
});

/**
 * `/healthz`: the process answers. `/readyz`: its dependencies answer too, each checked with
 * `passesInTime`; 503 naming those that did not. A draining node answers 503 `draining` without
 * checking anything, so the load balancer stops sending it streams at once. Without `readiness`
 * only `/healthz` is served (`/readyz` is on the internal METRICS_PORT).
 */
export function healthRoutes(app: ApiInstance, { readiness, draining }: Pick<ApiDeps, 'readiness' | 'draining'>): void {
  app.get(
    '/healthz',
    {
      schema: { operationId: 'getHealth', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
      config: { public: true },
    },
    async () => ({ status: 'ok' as const }),
  );
  if (!readiness) return;

  app.get(
    '/readyz',
    { schema: { operationId: 'getReadiness', response: { 200: Ready, 503: NotReady } }, config: { public: true } },
    async (request, reply) => {
      if (draining?.()) return reply.code(503).send({ status: 'draining' as const });
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
      return ready ? { status: 'ok' as const, checks } : { status: 'unavailable' as const, checks, failed };
    },
  );
}
