/**
 * Verifying a webhook delivery (src/runtime/webhooks.ts signs them): `X-Troupe-Signature:
 * sha256=<hex HMAC-SHA256(secret, "<X-Troupe-Timestamp>.<raw body>")>`, the timestamp in unix
 * seconds. Verify against the raw body as received, before parsing it.
 */
import crypto from 'node:crypto';
import type { HubEventBody } from './types.js';

export interface WebhookInput {
  /** The agent's webhook secret (POST .../agents/:agentId/webhook-secret). */
  secret: string;
  /** The request's headers (any case; a Headers object or Node's IncomingHttpHeaders). */
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The raw body, exactly as received. */
  body: string | Buffer;
  /** How old a delivery may be, in seconds (default 300): older ones are refused as replays. */
  toleranceSeconds?: number;
  /** The current time in ms (default Date.now()). */
  now?: number;
}

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
}

function header(headers: WebhookInput['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const h = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(h).find((k) => k.toLowerCase() === name);
  const v = key ? h[key] : undefined;
  return Array.isArray(v) ? v[0] : v;
}

/** The signature Troupe sends for this body and timestamp. */
export function webhookSignature(secret: string, timestamp: string, body: string | Buffer): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** Throws WebhookVerificationError (saying why) unless the delivery is signed with `secret` and recent. */
export function verifyWebhook(input: WebhookInput): HubEventBody & { cursor: string; agentId: string; createdAt: string } {
  const ts = header(input.headers, 'x-troupe-timestamp');
  const given = header(input.headers, 'x-troupe-signature');
  if (!ts || !/^\d+$/.test(ts)) throw new WebhookVerificationError('missing or malformed X-Troupe-Timestamp header');
  if (!given) throw new WebhookVerificationError('missing X-Troupe-Signature header (has the agent a webhook secret?)');
  const tolerance = input.toleranceSeconds ?? 300;
  if (Math.abs((input.now ?? Date.now()) / 1000 - Number(ts)) > tolerance) throw new WebhookVerificationError(`timestamp is more than ${tolerance} s away from now (a replay?)`);
  const expected = Buffer.from(webhookSignature(input.secret, ts, input.body));
  const got = Buffer.from(given);
  if (got.length !== expected.length || !crypto.timingSafeEqual(got, expected)) throw new WebhookVerificationError('signature does not match (wrong secret, or the body was altered)');
  return JSON.parse(String(input.body));
}

/** verifyWebhook as a boolean. */
export function isValidWebhook(input: WebhookInput): boolean {
  try {
    verifyWebhook(input);
    return true;
  } catch {
    return false;
  }
}
