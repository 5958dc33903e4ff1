import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import helmet from '@fastify/helmet';
import proxyAddr from '@fastify/proxy-addr';
import Fastify, { LogController, type FastifyInstance, type RouteOptions } from 'fastify';
import { WebSocketServer } from 'ws';
import { BufferPool } from '../media/buffer-pool.js';
import { startWorkers } from '../workers/index.js';
import { apiPlugin } from './api/index.js';
import { DASHBOARD_DIR, dashboardPlugin } from './api/dashboard.js';
import { registerOpenApi } from './api/openapi.js';
import { AudiohookAuth } from './auth/audiohook.js';
import { AuthFailures } from './auth/failures.js';
import { RedisCallControl } from './calls/control-bus.js';
import { NodeHeartbeat } from './calls/heartbeat.js';
import { CallRegistry } from './calls/registry.js';
import { TenantStreams } from './calls/tenant-streams.js';
import { CallSession } from './calls/session.js';
import { StreamAdmission } from './calls/stream-admission.js';
import { CallrecError, HttpError, httpStatus } from './errors.js';
import { SiprecServer } from './sip/siprec.js';
import type { Config } from './config.js';
import { PromptCache } from './consent/prompts.js';
import { createTtsEngine } from './consent/tts/index.js';
import { createLogger, type Logger } from './log.js';
import { MediaMetrics } from './metrics.js';
import { adapters } from './protocols/index.js';
import type { Provider } from './protocols/types.js';
import { RecordingEnqueuer, type RecordingJobData } from './queue/recordings.js';
import { recoverSpools, RecoverySweep, SweepBatches } from './recovery.js';
import { NodeGauges } from './node-gauges.js';
import { claimNodeIdentity } from './node-identity.js';
import { Listener } from './listener.js';
import { logRequests, requestId } from './api/request-log.js';
import { SpoolOpener } from './recording/shared-spool.js';
import { SpoolMonitor } from './recording/spool-monitor.js';
import { TranscodeCache } from './recording/transcode-cache.js';
import { openServices, type Services } from './services.js';
import { redisAnswers } from './redis.js';
import { startPrivateRedis, type PrivateRedis } from './private-redis.js';
import { startWorkerHttp } from './worker-http.js';
import type { StorageResolver } from './storage/resolver.js';
import type { Recording, Store } from './store/index.js';
import { emitRecordingEvent } from './webhooks/index.js';

export interface ServerOptions {
  log?: Logger;
  /**
   * Run the workers in this process (this node's own queue and the shared work); default true.
   * Off, recordings spooled on this node's disk wait in its queue until it runs with workers.
   */
  workers?: boolean;
  /** Jitter window for placing frames, ms. */
  jitterMs?: number;
  /** How often `/metrics` counts recordings by status again, ms (tests shorten it). */
  recordingsRefreshMs?: number;
  /** Called with each HTTP route as it is registered (the OpenAPI test checks the document covers them all). */
  onRoute?: (route: RouteOptions) => void;
}

export interface CallrecServer {
  /** `http://host:port` the server listens on. */
  url: string;
  port: number;
  /** `http://host:port` of the internal listener (`/metrics`, `/readyz`) when METRICS_PORT is set; else null (the API port serves them). */
  metricsUrl: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: the raw server, request and reply types vary with TLS and HTTP/2 options.
  app: FastifyInstance<any, any, any, Logger>;
  store: Store;
  storage: StorageResolver;
  registry: CallRegistry;
  log: Logger;
  /** The SIPREC recording server (`SIP_LISTEN`); null when SIP is off. */
  siprec: SiprecServer | null;
  /** Stops accepting streams, ends live calls (queueing their recordings), then closes everything. */
  close(): Promise<void>;
  /**
   * Graceful shutdown (SIGTERM): refuses new streams and fails `/readyz` at once, lets live calls
   * run to their end (at most `DRAIN_TIMEOUT_SECONDS`), ends the rest, waits until this node's
   * own queue has handed its queued recordings to its workers, then closes. Called again while
   * draining, it ends the live calls now (still finalizing them) and returns the same promise.
   */
  drain(): Promise<void>;
}

/** A recording `deleting` this long is taken as left half-way by a failed bucket or a dead process. */
const DELETION_IDLE_MS = 60_000;

/** `/metrics` in the OpenAPI document: Prometheus text, no key (the route is outside the API's authentication). */
const METRICS_SCHEMA = {
  operationId: 'getMetrics',
  summary: 'Prometheus metrics (text exposition format)',
  response: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
};

/** How often the drain looks at this node's own recordings queue. */
const DRAIN_POLL_MS = 200;

/** Past this `ws` itself drops the connection (1009, no reason); below it, a session closes
 * messages over MAX_MESSAGE_BYTES with a reason that says what happened. */
const MAX_WS_PAYLOAD = 1024 * 1024;
/** `/media/<provider>`, one endpoint per adapter. */
const MEDIA_PATH = new RegExp(`^/media/(${Object.keys(adapters).join('|')})/?$`);

/** Answers a media upgrade with the error's HTTP status instead: `code: reason` as the body, the code in `X-Callrec-Error`. */
function refuseUpgrade(socket: Duplex, err: CallrecError): void {
  const body = `${err.code}: ${err.message}`;
  const status = httpStatus(err);
  const headers = Object.entries(err instanceof HttpError ? err.headers : {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nX-Callrec-Error: ${err.code}\r\n${headers}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Redis (a private `redis-server` on a bare machine: `REDIS_URL` unset and nothing at the
 * default address), then the services; `config` names the Redis used.
 */
async function openNode(
  given: Config,
  log: Logger,
): Promise<{ config: Config; privateRedis: PrivateRedis | null; services: Services }> {
  const privateRedis =
    given.redisUrlDefault && !(await redisAnswers(given.redisUrl))
      ? await startPrivateRedis(given.dataDir, given.redisUrl, log)
      : null;
  const config = privateRedis ? { ...given, redisUrl: privateRedis.url } : given;
  const services = await openServices(config, log).catch(async (err: unknown) => {
    await privateRedis?.stop();
    throw err;
  });
  return { config, privateRedis, services };
}

/** Starts callrec: HTTP API, provider WebSocket endpoints, and (by default) the workers. */
export async function startServer(given: Config, opts: ServerOptions = {}): Promise<CallrecServer> {
  // The port first: a busy one stops the node before it has touched Redis or the database.
  const listener = await Listener.bind(given.host, given.port, 'PORT');
  const identity = await claimNodeIdentity(given.dataDir).catch(async (err: unknown) => {
    await listener.close();
    throw err;
  });
  const { nodeId } = identity;
  const log = (opts.log ?? createLogger(given.logLevel, { format: given.logFormat })).child({ node: nodeId });
  const { config, privateRedis, services } = await openNode(given, log).catch(async (err: unknown) => {
    await identity.release();
    await listener.close();
    throw err;
  });
  const { store, storage, keyring, recordings, webhooks } = services;
  const metrics = new MediaMetrics();
  metrics.registry.registerMetric(services.egress.refused);
  const workers =
    opts.workers === false
      ? null
      : startWorkers(
          { store, storage, log, keyring, webhooks, spools: services.spools },
          {
            connection: services.connection,
            prefix: config.queuePrefix,
            nodeId,
            jobTimeLimitMs: config.jobTimeLimitMs,
            metrics,
          },
        );
  if (!workers && !config.spoolUrl)
    log.warn("no workers and no SPOOL_URL: this node's recordings wait in its queue until it runs with workers");
  const heartbeat = new NodeHeartbeat({ redisUrl: config.redisUrl, prefix: config.queuePrefix, nodeId, log });
  // When this node's previous life last beat (the first beat below overwrites it): where its calls' audio ends.
  const previousBeat = await heartbeat.start();
  // Before this node takes a stream, what its previous life on this DATA_DIR left is recovered at
  // once (its own node id is not alive yet); afterwards every sweep takes this node as alive.
  // At start every recording is checked; the periodic sweeps take the long lists a batch at a time.
  const batches = new SweepBatches();
  const recover = async (selfAlive: boolean) => {
    const report = await recoverSpools(store, recordings, config.dataDir, {
      nodeId,
      log,
      batches: selfAlive ? batches : undefined,
      isNodeAlive: async (id) => (id === nodeId ? selfAlive : await heartbeat.isAlive(id)),
      lastSeen: async (id) => (id === nodeId && !selfAlive ? previousBeat : heartbeat.lastSeen(id)),
      buckets: {
        storageFor: (recording) => storage.forTenant(recording.tenantId),
        spoolAt: (url) => services.spools.storeAt(url),
      },
    });
    metrics.recordingJobRetries.inc({ by: 'sweep' }, report.outageRetried.length);
    // Deletions a dead process or a silent bucket left half-way (`RecordingRepository.delete`).
    const onError = (recording: Recording, err: Error) =>
      log.warn(
        { recordingId: recording.id, err },
        'could not finish deleting a recording; trying again at the next sweep',
      );
    for (const deleted of await store.recordings.finishDeletions((recording) => storage.forRecording(recording), {
      idleMs: DELETION_IDLE_MS,
      onError,
    })) {
      log.info(
        { tenantId: deleted.tenantId, callId: deleted.callId, recordingId: deleted.id },
        'finished deleting a recording',
      );
      await emitRecordingEvent(webhooks, 'recording.deleted', deleted);
    }
    return report;
  };
  const { orphanSpools } = await recover(false);
  if (orphanSpools.length > 0) log.warn({ files: orphanSpools }, 'spool files without a recording (kept)');
  const sweep = new RecoverySweep(() => recover(true), log);
  sweep.start(config.recoveryIntervalMs);
  const tenantStreams = new TenantStreams({ redisUrl: config.redisUrl, prefix: config.queuePrefix, nodeId, log });
  await tenantStreams.start();
  const registry = new CallRegistry(tenantStreams);
  const sessions = new Set<CallSession>();
  metrics.relayBuffered = () => {
    const total = { runtime: 0, provider: 0 };
    for (const session of sessions) {
      const { runtime, provider } = session.relayBufferedBytes;
      total.runtime += runtime;
      total.provider += provider;
    }
    return total;
  };
  const control = new RedisCallControl({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    nodeId,
    registry,
    log,
  });
  await control.start();
  const tts = createTtsEngine(config.ttsEngine, process.env, config.flite);
  const prompts = new PromptCache(tts, { maxTextsPerTenantPerHour: config.promptsPerTenantPerHour });

  const spoolMonitor = new SpoolMonitor({ dir: path.join(config.dataDir, 'spool'), log, metrics });
  await spoolMonitor.probe();
  spoolMonitor.start();
  const gauges = new NodeGauges({
    metrics,
    store,
    recordings,
    spoolBytes: services.spoolBytes,
    node: { heartbeat, nodeId, spools: spoolMonitor },
    dataDir: config.dataDir,
    recordingsRefreshMs: opts.recordingsRefreshMs,
  });
  // The spool is on this node's disk: only this node's queue may finalize it.
  const enqueuer = new RecordingEnqueuer(recordings, { log, waiting: metrics.recordingsWaitingForRedis });
  const transcodes = await TranscodeCache.open(path.join(config.dataDir, 'tmp', 'transcoded'), {
    limits: config.transcodes,
  });
  // The node's dependencies, and its own spool disk: a node that cannot spool takes no streams.
  const readiness = async () => ({ ...(await services.readiness()), spool_disk: spoolMonitor.writable });
  // One budget per client address for failed API and stream authentications.
  const authFailures = new AuthFailures(config.http.authFailuresPerIpPerMinute);
  /** Who a media upgrade came from, by the rule Fastify applies to HTTP requests (TRUST_PROXY). */
  const trustedProxy = proxyAddr.compile(config.trustProxy);
  const admission = new StreamAdmission(authFailures, config.streams.pendingPerAddress, config.streams.authTimeoutMs);
  const app = Fastify({
    serverFactory: listener.factory,
    genReqId: requestId,
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    // Only the configured proxies may say who the client is (X-Forwarded-For); else the TCP peer is.
    trustProxy: config.trustProxy.length > 0 ? config.trustProxy : false,
    // Call and agent ids are the providers' (Telnyx's are long); Fastify's default is 100.
    routerOptions: { maxParamLength: 256 },
    // Live calls are finalized before the HTTP server closes; keep-alive sockets must not hold it open.
    forceCloseConnections: true,
  });
  await app.register(helmet, {
    // Helmet's defaults, minus `upgrade-insecure-requests`: a self-hosted node is often plain
    // HTTP on a private address, where upgrading would break every request. The dashboard's
    // pages set their own, stricter CSP per response; this one only has to allow nothing
    // beyond the node itself (`default-src 'self'`).
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  logRequests(app);
  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);
  await registerOpenApi(app);
  await app.register(apiPlugin, {
    limits: config.http,
    authFailures,
    store,
    storage,
    egress: services.egress,
    keyring,
    control,
    webhooks,
    transcodes,
    telnyx: config.telnyx,
    ...(config.metricsPort === undefined ? { readiness } : {}),
    draining: () => draining !== null,
  });

  await app.register(dashboardPlugin, { root: DASHBOARD_DIR, testCall: config.telnyx !== undefined });

  // Unauthenticated, scraped by Prometheus on the node's own network: on METRICS_PORT when set,
  // where the public API port does not show the node's figures (all tenants') to anyone.
  const internal =
    config.metricsPort === undefined
      ? null
      : await startWorkerHttp({
          listener: await Listener.bind(config.host, config.metricsPort, 'METRICS_PORT'),
          host: config.host,
          log,
          metrics,
          gauges,
          readiness,
          draining: () => draining !== null,
        });
  if (!internal) {
    app.get('/metrics', { schema: METRICS_SCHEMA }, async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return gauges.scrape();
    });
  }

  // The adapters check text frames' UTF-8 themselves, and only where they must: a media frame
  // the fast path reads is ASCII by its rules (src/protocols/media-scan.ts); everything else
  // is checked before it is parsed.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_WS_PAYLOAD,
    perMessageDeflate: false,
    skipUTF8Validation: true,
  });
  const media = {
    store,
    registry,
    log,
    dataDir: config.dataDir,
    nodeId,
    jitterMs: opts.jitterMs,
    buffers: new BufferPool(),
    limits: config.streams,
    authFailures,
    egress: services.egress,
    remoteTimeouts: config.remoteTimeouts,
    admission,
    metrics,
    prompts,
    spools: new SpoolOpener(
      config.spoolUrl
        ? {
            store: services.spools.storeAt(config.spoolUrl),
            keyring,
            segmentSeconds: config.spoolSegmentSeconds,
            log,
            metrics,
          }
        : null,
      spoolMonitor,
    ),
    webhooks,
    // A spool only on this node's disk can be finalized by this node's queue alone; a shipped one by any worker.
    enqueue: (job: RecordingJobData, shared: boolean) => enqueuer.add(job, shared ? null : nodeId),
  };
  const audiohookAuth = new AudiohookAuth({
    store,
    keyring,
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    authFailures,
  });
  let accepting = true;
  /** Why this node takes no new call now (its spool disk, MAX_STREAMS_PER_NODE), counted; null: it takes one. */
  function nodeRefusal(): CallrecError | null {
    const refusal = !spoolMonitor.writable
      ? new CallrecError('ERR_SPOOL_UNWRITABLE', `${spoolMonitor.reason}; stream to another node`)
      : sessions.size >= config.streams.perNode
        ? new CallrecError(
            'ERR_NODE_STREAM_LIMIT',
            `this node holds its ${config.streams.perNode} streams (MAX_STREAMS_PER_NODE)`,
          )
        : null;
    if (refusal) metrics.streamLimitsTotal.inc({ limit: refusal.code });
    return refusal;
  }
  const siprec = config.sip
    ? new SiprecServer({
        config: config.sip,
        media,
        keyring,
        log: log.child({ component: 'sip' }),
        draining: () => !accepting,
        refusal: nodeRefusal,
        onCall: (call) => {
          sessions.add(call);
          void call.ended.then(() => sessions.delete(call));
        },
      })
    : null;
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = MEDIA_PATH.exec(url.pathname);
    if (!accepting) {
      // A provider (or the proxy before it) retries a refused connection elsewhere; say why.
      refuseUpgrade(socket, new CallrecError('ERR_DRAINING', 'this media node is draining; stream to another node'));
      return;
    }
    if (!match) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    const refusal = nodeRefusal();
    if (refusal) {
      refuseUpgrade(socket, refusal);
      return;
    }
    const address = proxyAddr(req, trustedProxy);
    try {
      admission.check(address);
    } catch (err) {
      metrics.streamLimitsTotal.inc({ limit: (err as CallrecError).code });
      refuseUpgrade(socket, err as CallrecError);
      return;
    }
    const provider = match[1] as Provider;
    const accept = () =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        const upgrade = { headers: req.headers, query: Object.fromEntries(url.searchParams), address };
        const session = new CallSession(ws, adapters[provider](upgrade), upgrade, media);
        sessions.add(session);
        metrics.callsActive.set(sessions.size);
        void session.ended.then(() => {
          sessions.delete(session);
          metrics.callsActive.set(sessions.size);
        });
      });
    // AudioHook authenticates the upgrade itself (its key and signature are headers): refused with 401 before any socket.
    if (provider !== 'genesys') return accept();
    audiohookAuth.check(req, address).then(accept, (err: Error) => {
      if (err instanceof CallrecError && err.code === 'ERR_RATE_LIMITED')
        metrics.streamLimitsTotal.inc({ limit: err.code });
      if (err instanceof CallrecError && (err.code === 'ERR_UNAUTHORIZED' || err.code === 'ERR_RATE_LIMITED'))
        return refuseUpgrade(socket, err);
      // The database or Redis did not answer: not the client's fault, and worth a retry (503).
      log.error({ err }, 'AudioHook authentication could not be checked');
      refuseUpgrade(socket, new CallrecError('ERR_UNAVAILABLE', 'authentication could not be checked; retry'));
    });
  });

  await app.ready();
  listener.open();
  const { port } = listener;
  log.info({ port }, 'callrec listening');
  if (siprec) {
    await siprec.listen();
    log.info({ sip: siprec.transport.addresses() }, 'SIPREC listening');
  }

  async function close(): Promise<void> {
    accepting = false;
    // Calls ending now get one attempt to queue their recording; recovery does the rest.
    enqueuer.close();
    await Promise.all([...sessions].map((s) => s.shutdown()));
    await siprec?.close();
    await app.close();
    await listener.close();
    await internal?.close();
    wss.close();
    await sweep.stop();
    await spoolMonitor.stop();
    await workers?.close();
    await control.close();
    await tenantStreams.close();
    await heartbeat.stop();
    await transcodes.close();
    await audiohookAuth.close();
    await tts.close?.();
    await services.close();
    await privateRedis?.stop();
    await identity.release();
  }

  let draining: Promise<void> | null = null;
  /** Aborted by the drain's timeout or a second signal: live calls are ended now. */
  const endCalls = new AbortController();
  async function drainThenClose(): Promise<void> {
    accepting = false;
    metrics.draining.set(1);
    // setTimeout fires at once past 2^31-1 ms (24.8 days): such a timeout means "no limit".
    const timer = setTimeout(
      () => endCalls.abort(new Error(`DRAIN_TIMEOUT_SECONDS (${config.drainTimeoutMs / 1000}) passed`)),
      Math.min(config.drainTimeoutMs, 2 ** 31 - 1),
    );
    log.info(
      { calls: sessions.size, timeoutSeconds: config.drainTimeoutMs / 1000 },
      'draining: refusing new streams, waiting for live calls to end',
    );
    const callsEnded = (async () => {
      while (sessions.size > 0) await Promise.all([...sessions].map((s) => s.ended));
    })();
    const cut = new Promise<false>((resolve) =>
      endCalls.signal.addEventListener('abort', () => resolve(false), { once: true }),
    );
    const ended = await Promise.race([callsEnded.then(() => true), cut]);
    if (!ended) {
      log.warn(
        { calls: sessions.size, why: (endCalls.signal.reason as Error).message },
        'draining: ending the live calls now (their recordings are finalized)',
      );
      await Promise.all([...sessions].map((s) => s.shutdown()));
    }
    clearTimeout(timer);
    log.info("draining: every call ended; handing this node's queued recordings to its workers");
    // This node's spools can be finalized only here: its workers take what its queue holds
    // before they stop (jobs backing off for a retry wait for the node's restart or recovery).
    const own = recordings.queue(nodeId);
    try {
      // With no workers here, they wait for the node to run with workers again.
      for (; workers; ) {
        // Delayed too: a tenant's jobs past its share of the workers wait a second for a slot.
        const counts = await own.getJobCounts('waiting', 'active', 'prioritized', 'delayed');
        if (counts.waiting + counts.active + counts.prioritized + counts.delayed === 0) break;
        await sleep(DRAIN_POLL_MS);
      }
    } catch (err) {
      log.warn(
        { err },
        "draining: cannot read this node's queue; what it holds waits for the node's restart or recovery",
      );
    }
    log.info('draining: queued recordings handed over; closing');
    await close();
    log.info('drained');
  }

  return {
    url: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`,
    port,
    metricsUrl: internal?.url ?? null,
    app,
    store,
    storage,
    registry,
    log,
    siprec,
    close,
    drain() {
      if (draining === null) draining = drainThenClose();
      else if (!endCalls.signal.aborted) endCalls.abort(new Error('a second signal'));
      return draining;
    },
  };
}
