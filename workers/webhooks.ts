import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { MasterKeyring } from '../src/crypto/keys.js';
import { CallrecError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import type { Store } from '../src/store/index.js';
import { loadTenantSettings } from '../src/tenants/settings.js';
import { SIGNATURE_HEADER, signatureHeader, WEBHOOKS_QUEUE, type WebhookJobData } from '../src/webhooks/index.js';
import { standardWebhookHeaders } from '../src/webhooks/standard.js';

export interface WebhookProcessorDeps {
  store: Store;
  keyring: MasterKeyring;
  log: Logger;
  /** Per attempt; a receiver slower than this counts as down and is retried. Default 10 s. */
  timeoutMs?: number;
}

/** `delivered: false` when the tenant removed its webhook URL before the event went out. */
export interface WebhookJobResult {
  delivered: boolean;
  status?: number;
}

/**
 * Delivers one event: POSTs its JSON to the tenant's current `webhook_url`, signed with its
 * current secret, with `Callrec-Signature` and the Standard Webhooks headers (unsigned when it has none). Anything but a 2xx, a network error or a timeout
 * throws, so BullMQ retries it with backoff. The URL and secret are read at delivery, so
 * secrets never sit in Redis and a corrected URL applies to pending retries.
 */
export function createWebhookProcessor(deps: WebhookProcessorDeps) {
  const { store, keyring, log, timeoutMs = 10_000 } = deps;
  return async function deliverWebhook(job: Job<WebhookJobData>): Promise<WebhookJobResult> {
    const { tenantId, body } = job.data;
    const { webhookUrl, webhookSecret } = await loadTenantSettings(store, keyring, tenantId);
    if (!webhookUrl) return { delivered: false };
    // Signed per attempt, so a late retry still falls inside the receiver's tolerance.
    const now = Math.floor(Date.now() / 1000);
    // The job id is the event id (see `emitWebhook`).
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'callrec-webhooks', ...standardWebhookHeaders(job.id!, body, webhookSecret, now) };
    if (webhookSecret) headers[SIGNATURE_HEADER] = signatureHeader(body, webhookSecret, now);
    const res = await fetch(webhookUrl, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    // The answer's body is of no interest; draining it frees the connection.
    await res.body?.cancel();
    if (res.status < 200 || res.status > 299) {
      throw new CallrecError('ERR_WEBHOOK', `webhook ${webhookUrl} answered ${res.status}`);
    }
    log.debug({ tenantId, jobId: job.id, status: res.status }, 'webhook delivered');
    return { delivered: true, status: res.status };
  };
}

/** Runs the webhook deliveries (beside the recording workers). */
export function startWebhookWorker(deps: WebhookProcessorDeps, opts: { connection: ConnectionOptions; prefix: string; concurrency?: number }): Worker<WebhookJobData> {
  const worker = new Worker<WebhookJobData>(WEBHOOKS_QUEUE, createWebhookProcessor(deps), {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 8,
  });
  worker.on('failed', (job, err) => {
    if (job) deps.log.warn({ jobId: job.id, tenantId: job.data.tenantId, attempt: job.attemptsMade, err: err.message }, 'webhook delivery failed');
  });
  worker.on('error', (err) => deps.log.error({ err: err.message }, 'webhooks worker error'));
  return worker;
}
