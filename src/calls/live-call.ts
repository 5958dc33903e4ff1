import type { BufferPool } from '../../media/buffer-pool.js';
import type { AuthFailures } from '../auth/failures.js';
import type { StreamAdmission } from './stream-admission.js';
import type { MediaFormat } from '../../media/types.js';
import type { RemoteTimeouts, StreamLimits } from '../config.js';
import { ConsentGate, type PromptPort } from '../consent/gate.js';
import type { PromptCache } from '../consent/prompts.js';
import type { Logger } from '../log.js';
import type { MediaMetrics } from '../metrics.js';
import type { EgressPolicy } from '../net/egress.js';
import type { RecordingJobData } from '../queue/recordings.js';
import type { SpoolOpener } from '../recording/shared-spool.js';
import type { Store } from '../store/index.js';
import type { WebhookContext } from '../webhooks/index.js';
import { StreamClock } from './clock.js';
import { CallRecorder } from './recorder.js';
import type { CallRegistry } from './registry.js';
import type { StreamIdentity } from './stream-auth.js';

/** What a call session needs from the node it runs on. */
export interface MediaContext {
  store: Store;
  registry: CallRegistry;
  log: Logger;
  /** Spool files go under `<dataDir>/spool`. */
  dataDir: string;
  nodeId: string;
  enqueue(job: RecordingJobData, shared: boolean): Promise<unknown>;
  /** Opens calls' spools (local, or shipped to `SPOOL_URL` too). */
  spools: SpoolOpener;
  /** `recording.audio_lost` goes out through it (see `CallRecorder`). */
  webhooks: WebhookContext;
  metrics: MediaMetrics;
  /** Consent prompts, rendered once per text and stream format. */
  prompts: PromptCache;
  /** Jitter window for frame placement, ms. */
  jitterMs?: number;
  /** The node's pool of call buffers (see `BufferPool`). */
  buffers: BufferPool;
  limits: StreamLimits;
  /** Failed authentications per client address, shared with the HTTP API (AUTH_FAILURES_PER_IP). */
  authFailures: AuthFailures;
  /** What agent runtimes may be (docs/security.md "Egress"): bridge mode connects through it. */
  egress: EgressPolicy;
  /** A runtime's handshake must finish within `connectMs` (default `REMOTE_TIMEOUT_DEFAULTS`). */
  remoteTimeouts?: RemoteTimeouts;
  /** Unauthenticated sockets per client address (MAX_PENDING_STREAMS_PER_IP), and their auth timeouts. */
  admission: StreamAdmission;
}

/** What records a live call: its stream clock, its consent gate, and the recorder that follows the gate. */
export interface CallParts {
  clock: StreamClock;
  gate: ConsentGate;
  recorder: CallRecorder;
}

/**
 * Builds a live call's parts from the node's context and the call's identity. Their options
 * are spelled out, not spread from the two: an object spread from two dozen properties is
 * built in dictionary mode, and every read of it on the frame path (the recorder's clock) was
 * a megamorphic load, 3% of the fork path's CPU (bench).
 */
export function wireCall(
  ctx: MediaContext,
  identity: StreamIdentity,
  format: MediaFormat,
  log: Logger,
  port: Omit<PromptPort, 'clockMs'>,
): CallParts {
  const { tenantId, callId, settings } = identity;
  const clock = new StreamClock(format, ctx.limits.audioLeadMs);
  const gate = new ConsentGate({
    store: ctx.store,
    log,
    prompts: ctx.prompts,
    metrics: ctx.metrics,
    tenantId,
    callId,
    settings,
    format,
    port: { ...port, clockMs: () => clock.ms },
  });
  const recorder = new CallRecorder({
    store: ctx.store,
    log,
    dataDir: ctx.dataDir,
    spools: ctx.spools,
    webhooks: ctx.webhooks,
    enqueue: ctx.enqueue,
    jitterMs: ctx.jitterMs,
    buffers: ctx.buffers,
    limits: ctx.limits,
    tenantId,
    callId,
    settings,
    format,
    bridged: identity.mode === 'bridge',
    gate,
    clock,
  });
  return { clock, gate, recorder };
}
