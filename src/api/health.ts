import type { ApiDeps, ApiInstance } from './types.js';

/** `/healthz`: the process answers. `/readyz`: its dependencies answer too (503 otherwise). */
export function healthRoutes(app: ApiInstance, { readiness }: ApiDeps): void {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true } }, async (request, reply) => {
    let checks: Record<string, boolean>;
    try {
      checks = await readiness();
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed');
      checks = {};
    }
    const ready = Object.keys(checks).length > 0 && Object.values(checks).every(Boolean);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ok' : 'unavailable', checks };
  });
}
