import Fastify, { LogController } from 'fastify';
import { healthRoutes } from './api/health.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { logRequests, requestId } from './api/request-log.js';
import type { Listener } from './listener.js';
import type { Logger } from './log.js';
import type { MediaMetrics } from './metrics.js';
import type { NodeGauges } from './node-gauges.js';

export interface WorkerHttpOptions {
  /** Bound to `WORKER_PORT` before the worker opened anything else. */
  listener: Listener;
  host: string;
  log: Logger;
  metrics: MediaMetrics;
  gauges: NodeGauges;
  /** `/readyz`'s checks (the same as a media node's: what the workers need). */
  readiness(): Promise<Record<string, boolean>>;
  /** True once the worker is stopping: `/readyz` answers 503 `draining`. */
  draining(): boolean;
}

/**
 * `callrec worker`'s small HTTP listener: `/healthz`, `/readyz` and `/metrics` as a media node
 * serves them (unauthenticated: keep the port on the internal network), so a worker is probed
 * and scraped like one.
 */
export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ serverFactory: opts.listener.factory, genReqId: requestId, loggerInstance: opts.log, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  logRequests(app);
  await app.register(async (scope) => healthRoutes(scope.withTypeProvider<TypeBoxTypeProvider>(), { readiness: opts.readiness, draining: opts.draining }));
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
