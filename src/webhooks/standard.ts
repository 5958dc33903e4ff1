import { createHmac } from 'node:crypto';

/** A Standard Webhooks secret: `whsec_` and the key's bytes in base64 (the spec asks for 24 to 64 of them). */
const STANDARD_SECRET = /^whsec_((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;

/** Whether `secret` claims the Standard Webhooks form (`whsec_…`) and is a valid one. */
export function isStandardSecret(secret: string): boolean {
  const match = STANDARD_SECRET.exec(secret);
  const bytes = match ? Buffer.from(match[1], 'base64').length : 0;
  return bytes >= 24 && bytes <= 64;
}

/**
 * The HMAC key of `webhook-signature`: a `whsec_<base64>` secret's decoded bytes, so the same
 * string works in stock verifiers; any other secret's UTF-8 bytes (stock verifiers then take
 * `whsec_` followed by the secret in base64, or the secret as a raw key).
 */
export function standardWebhookKey(secret: string): Buffer {
  return isStandardSecret(secret) ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

/**
 * The Standard Webhooks headers (standardwebhooks.com) beside `Callrec-Signature`, so stock
 * verifiers work: `webhook-id` (the event id, the same on every retry), `webhook-timestamp`
 * (unix seconds of this attempt) and, with a secret, `webhook-signature: v1,<base64 HMAC-SHA256
 * of "<id>.<timestamp>.<body>">`.
 */
export function standardWebhookHeaders(
  eventId: string,
  body: string,
  secret: string | null,
  timestampSec: number,
): Record<string, string> {
  const headers: Record<string, string> = { 'webhook-id': eventId, 'webhook-timestamp': String(timestampSec) };
  if (secret)
    headers['webhook-signature'] =
      `v1,${createHmac('sha256', standardWebhookKey(secret)).update(`${eventId}.${timestampSec}.${body}`).digest('base64')}`;
  return headers;
}
