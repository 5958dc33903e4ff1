import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import type { MasterKeyring } from '../crypto/keys.js';
import { Type, type Static, type TSchema } from 'typebox';
import { EgressRefusedError, type EgressPolicy } from '../net/egress.js';
import { LostSpanSchema, Nullable, StringEnum } from '../schemas.js';
import type { Recording, Store } from '../store/index.js';
import { loadTenantSettings } from '../tenants/settings.js';

/** BullMQ queue of webhook deliveries (SPEC §3). */
export const WEBHOOKS_QUEUE = 'webhooks';

/** What each event says; `recording.audio_lost`: a live call's recording has started losing audio (its node's spool disk is full); it goes on, partial. */
export const WEBHOOK_EVENTS = {
  'recording.completed': 'A recording is ready in its bucket',
  'recording.failed': 'A recording could not be made; `error` says why',
  'recording.deleted': 'A recording was deleted (by the API or retention); a tombstone remains',
  'recording.audio_lost':
    "A live call's recording has started losing audio (its node's spool disk is full or failing); it goes on, partial",
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENTS;

/** What a tenant's endpoint receives, as JSON. */
export interface WebhookEvent<T = Record<string, unknown>> {
  id: string;
  type: WebhookEventType;
  created_at: string;
  data: T;
}

export interface WebhookJobData {
  tenantId: string;
  /** The event's JSON, serialised once so every attempt sends (and signs) the same bytes. */
  body: string;
}

/** `data` of the `recording.*` events. */
export const RecordingEventDataSchema = Type.Object({
  call_id: Type.String(),
  recording_id: Type.String(),
  agent_id: Nullable(Type.String()),
  status: StringEnum(['recording', 'paused', 'processing', 'ready', 'failed', 'deleting', 'deleted']),
  format: StringEnum(['mp3', 'wav', 'ogg']),
  duration_ms: Nullable(Type.Number()),
  byte_size: Nullable(Type.Integer()),
  sha256: Nullable(Type.String()),
  storage_url: Nullable(Type.String()),
  object_key: Nullable(Type.String()),
  complete: Type.Boolean({ description: 'false when audio was lost; lost_spans says where' }),
  lost_spans: Type.Array(LostSpanSchema),
  error: Type.Optional(Type.String()),
});
export type RecordingEventData = Static<typeof RecordingEventDataSchema>;

/** The body of an event of `type` (the OpenAPI document's `webhooks` describe each). */
export function webhookEventSchema<T extends TSchema>(type: WebhookEventType, data: T) {
  return Type.Object({
    id: Type.String({ description: 'evt_…; also the webhook-id header, the same on every retry' }),
    type: Type.Literal(type),
    created_at: Type.String({ format: 'date-time' }),
    data,
  });
}

/** What emitting needs: the queue, and the store and keyring to read the tenant's webhook settings; delivering, the egress policy. */
export interface WebhookContext {
  queue: Queue<WebhookJobData>;
  store: Store;
  keyring: MasterKeyring;
  egress: EgressPolicy;
}

/**
 * A receiver that is down is retried with exponential backoff, by default from 5 s over
 * 8 attempts (about 10 minutes in all); failed deliveries are kept a week for inspection.
 */
function webhookJobOptions(backoffMs = 5000) {
  return {
    attempts: 8,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  } as const;
}

/** `backoffMs` is the first retry's delay; tests shorten it. */
export function createWebhookQueue(
  connection: ConnectionOptions,
  prefix: string,
  opts: { backoffMs?: number } = {},
): Queue<WebhookJobData> {
  return new Queue<WebhookJobData>(WEBHOOKS_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: webhookJobOptions(opts.backoffMs),
  });
}

/**
 * Queues `type` for the tenant's webhook and returns the event, or null (nothing queued) when
 * the tenant has no `webhook_url`. The job id is the event id, so adding it again is a no-op.
 */
export async function emitWebhook<T extends object>(
  ctx: WebhookContext,
  tenantId: string,
  type: WebhookEventType,
  data: T,
): Promise<WebhookEvent<T> | null> {
  const settings = await loadTenantSettings(ctx.store, ctx.keyring, tenantId);
  if (!settings.webhookUrl) return null;
  const event: WebhookEvent<T> = {
    id: `evt_${randomBytes(12).toString('hex')}`,
    type,
    created_at: new Date().toISOString(),
    data,
  };
  await ctx.queue.add(type, { tenantId, body: JSON.stringify(event) }, { jobId: event.id });
  return event;
}

/** The `data` of a recording event; `agent_id` comes from the recording's call. */
export async function recordingEventData(store: Store, recording: Recording): Promise<RecordingEventData> {
  const call = await store.calls.get(recording.tenantId, recording.callId);
  return {
    call_id: recording.callId,
    recording_id: recording.id,
    agent_id: call?.agentId ?? null,
    status: recording.status,
    format: recording.format,
    duration_ms: recording.durationMs,
    byte_size: recording.byteSize,
    sha256: recording.sha256,
    storage_url: recording.storageUrl,
    object_key: recording.objectKey,
    complete: recording.complete,
    lost_spans: recording.lostSpans,
    ...(recording.error === null ? {} : { error: recording.error }),
  };
}

/** Emits a `recording.*` event for `recording` as it now is. */
export async function emitRecordingEvent(
  ctx: WebhookContext,
  type: WebhookEventType,
  recording: Recording,
): Promise<WebhookEvent<RecordingEventData> | null> {
  return emitWebhook(ctx, recording.tenantId, type, await recordingEventData(ctx.store, recording));
}

/**
 * Refuses (`EgressRefusedError`, field `webhook_url`) a webhook URL the node may not post to:
 * an internal host, or plain http:// to a host `EGRESS_ALLOW` does not name.
 */
export async function checkWebhookTarget(egress: EgressPolicy, webhookUrl: string): Promise<URL> {
  const url = new URL(webhookUrl);
  if (url.protocol !== 'https:' && !(await egress.allowlisted(url))) {
    egress.refused.inc({ target: 'webhook_url' });
    throw new EgressRefusedError('webhook_url', 'must be an https:// URL (http:// only to hosts EGRESS_ALLOW names)');
  }
  await egress.check(url, 'webhook_url', 'webhook_url');
  return url;
}

export const SIGNATURE_HEADER = 'Callrec-Signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as the receiver recomputes it. */
export function signatureHeader(body: string, secret: string, timestampSec: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex');
  return `t=${timestampSec},v1=${mac}`;
}

/**
 * Checks a `Callrec-Signature` header against the raw body: true when one of its `v1`
 * signatures matches and its `t` is within `toleranceSec` of `nowMs` (which stops replays).
 */
export function verifySignature(
  header: string,
  body: string,
  secret: string,
  toleranceSec: number,
  nowMs = Date.now(),
): boolean {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === 't' && /^\d+$/.test(value ?? '')) timestamp = Number(value);
    else if (name === 'v1' && value) signatures.push(value);
  }
  if (timestamp === undefined || Math.abs(nowMs / 1000 - timestamp) > toleranceSec) return false;
  const expected = Buffer.from(signatureHeader(body, secret, timestamp).slice(`t=${timestamp},v1=`.length), 'hex');
  // Constant time, so the comparison leaks nothing about how much of a forged signature was right.
  return signatures.some((sig) => {
    const given = Buffer.from(sig, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
