import Fastify, { LogController } from 'fastify';
import { healthRoutes } from './api/health.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { logRequests, requestId } from './api/request-log.js';
import type { Listener } from './listener.js';
import type { Logger } from './log.js';
import type { MediaMetrics } from './metrics.js';
import type { NodeGauges } from './node-gauges.js';

export interface WorkerHttpOptions {
  /** Bound to `WORKER_PORT` (before the worker opened anything else) or `METRICS_PORT`. */
  listener: Listener;
  host: string;
  log: Logger;
  metrics: MediaMetrics;
  gauges: NodeGauges;
  /** `/readyz`'s checks (a worker's are a media node's: what the workers need). */
  readiness(): Promise<Record<string, boolean>>;
  /** True once the worker is stopping: `/readyz` answers 503 `draining`. */
  draining(): boolean;
}

/**
 * The internal HTTP listener: `/healthz`, `/readyz` and `/metrics`, unauthenticated (keep the
 * port on the internal network). `callrec worker` always serves it (WORKER_PORT), so a worker is
 * probed and scraped like a media node; a media node serves it on METRICS_PORT when set, and
 * then its public API port no longer shows the node's cross-tenant figures.
 */
export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({
    serverFactory: opts.listener.factory,
    genReqId: requestId,
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  });
  logRequests(app);
  await app.register(async (scope) =>
    healthRoutes(scope.withTypeProvider<TypeBoxTypeProvider>(), { readiness: opts.readiness, draining: opts.draining }),
  );
  app.get('/metrics', async (_request, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.gauges.scrape();
  });
  await app.ready();
  opts.listener.open();
  return {
    url: `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${opts.listener.port}`,
    async close() {
      await app.close();
      await opts.listener.close();
    },
  };
}
