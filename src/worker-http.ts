import Fastify, { LogController } from 'fastify';
import { healthRoutes } from './api/health.js';
import type { TypeBoxProvider } from './api/typebox.js';
import type { Logger } from './log.js';
import type { MediaMetrics } from './metrics.js';
import type { NodeGauges } from './node-gauges.js';

export interface WorkerHttpOptions {
  host: string;
  /** `WORKER_PORT` or `METRICS_PORT`; 0 picks a free one. */
  port: number;
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
  const app = Fastify({ loggerInstance: opts.log, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  await app.register(async (scope) => healthRoutes(scope.withTypeProvider<TypeBoxProvider>(), { readiness: opts.readiness, draining: opts.draining }));
  app.get('/metrics', async (_request, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.gauges.scrape();
  });
  await app.listen({ port: opts.port, host: opts.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return { url: `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}`, close: () => app.close() };
}
