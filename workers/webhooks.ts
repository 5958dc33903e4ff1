import http from 'node:http';
import https from 'node:https';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { MasterKeyring } from '../src/crypto/keys.js';
import { CallrecError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import type { Store } from '../src/store/index.js';
import { errorCode } from '../src/errors.js';
import type { EgressPolicy } from '../src/net/egress.js';
import { loadTenantSettings } from '../src/tenants/settings.js';
import {
  checkWebhookTarget,
  SIGNATURE_HEADER,
  signatureHeader,
  WEBHOOKS_QUEUE,
  type WebhookJobData,
} from '../src/webhooks/index.js';
import { standardWebhookHeaders } from '../src/webhooks/standard.js';

export interface WebhookProcessorDeps {
  store: Store;
  keyring: MasterKeyring;
  log: Logger;
  /** Where tenants' webhooks may go (docs/security.md "Egress"). */
  egress: EgressPolicy;
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
 * current secret, with `Callrec-Signature` and the Standard Webhooks headers (unsigned when it
 * has none). Anything but a 2xx, a network error or a timeout throws, so BullMQ retries it with
 * backoff; a URL the egress policy refuses fails at once. The URL and secret are read at
 * delivery, so secrets never sit in Redis and a corrected URL applies to pending retries.
 * Redirects are not followed.
 */
export function createWebhookProcessor(deps: WebhookProcessorDeps) {
  const { store, keyring, log, egress, timeoutMs = 10_000 } = deps;
  return async function deliverWebhook(job: Job<WebhookJobData>): Promise<WebhookJobResult> {
    const { tenantId, body } = job.data;
    const { webhookUrl, webhookSecret } = await loadTenantSettings(store, keyring, tenantId);
    if (!webhookUrl) return { delivered: false };
    // Signed per attempt, so a late retry still falls inside the receiver's tolerance.
    const now = Math.floor(Date.now() / 1000);
    // The job id is the event id (see `emitWebhook`).
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'callrec-webhooks',
      ...standardWebhookHeaders(job.id!, body, webhookSecret, now),
    };
    if (webhookSecret) headers[SIGNATURE_HEADER] = signatureHeader(body, webhookSecret, now);
    let url: URL;
    try {
      url = await checkWebhookTarget(egress, webhookUrl);
    } catch (err) {
      // Set before the policy (or EGRESS_ALLOW) changed: retrying would not change the answer.
      throw errorCode(err) === 'ERR_EGRESS_REFUSED' ? new UnrecoverableError((err as Error).message) : err;
    }
    const status = await post(url, egress.agent('webhook_url', url.protocol), headers, body, timeoutMs);
    if (status < 200 || status > 299) {
      throw new CallrecError('ERR_WEBHOOK', `webhook ${webhookUrl} answered ${status}`);
    }
    log.debug({ tenantId, jobId: job.id, status }, 'webhook delivered');
    return { delivered: true, status };
  };
}

/**
 * POSTs `body` and resolves with the answer's status. `node:http` rather than `fetch`: its agent
 * takes the egress policy's pinned lookup (Node's fetch has no such hook without undici's own
 * dispatcher). The timeout covers connecting, sending and the whole answer.
 */
function post(
  url: URL,
  agent: http.Agent,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? https.request : http.request;
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        // The answer's body is of no interest; reading it to its end frees the connection.
        res
          .resume()
          .once('end', () => resolve(res.statusCode ?? 0))
          .once('error', reject);
      },
    );
    req.once('error', reject).end(body);
  });
}

/** Runs the webhook deliveries (beside the recording workers). */
export function startWebhookWorker(
  deps: WebhookProcessorDeps,
  opts: { connection: ConnectionOptions; prefix: string; concurrency?: number },
): Worker<WebhookJobData> {
  const worker = new Worker<WebhookJobData>(WEBHOOKS_QUEUE, createWebhookProcessor(deps), {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 8,
  });
  worker.on('failed', (job, err) => {
    if (job)
      deps.log.warn(
        { jobId: job.id, tenantId: job.data.tenantId, attempt: job.attemptsMade, err },
        'webhook delivery failed',
      );
  });
  worker.on('error', (err) => deps.log.error({ err }, 'webhooks worker error'));
  return worker;
}
