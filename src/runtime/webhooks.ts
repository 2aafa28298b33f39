/**
 * Webhook delivery through BullMQ: one job per agent event, retried with exponential backoff,
 * every attempt recorded in webhook_deliveries. Requests time out, and the worker runs many
 * deliveries at once, so a slow or dead endpoint never holds anything else up.
 *
 * Signature: `X-Troupe-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
 * `X-Troupe-Timestamp: <unix seconds>`; the secret is the agent's webhook secret.
 *
 * Deliveries go through the outbound guard (lib/outbound.ts): a webhook_url on a loopback, private,
 * link-local or metadata address is not contacted; the attempt is recorded as blocked and not retried.
 */
import crypto from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { config } from '../config.js';
import * as agentEvents from '../db/repositories/agent-events.js';
import * as agents from '../db/repositories/agents.js';
import * as deliveries from '../db/repositories/webhook-deliveries.js';
import { createRedis } from '../lib/redis.js';
import { unseal } from '../lib/secrets.js';
import { blockedCause, outbound } from '../lib/outbound.js';
import type { Logger } from '../log.js';
import { webhookRetry } from './retry-policy.js';

export const WEBHOOK_QUEUE = 'webhooks';
const prefix = () => `${config.redisPrefix}:bull`;

let queue: Queue | undefined;
export function webhookQueue(): Queue {
  queue ??= new Queue(WEBHOOK_QUEUE, {
    connection: createRedis({ forBullmq: true, name: 'troupe-webhook-queue' }),
    prefix: prefix(),
    defaultJobOptions: {
      ...webhookRetry(config.webhookAttempts, config.webhookBackoffMs),
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 24 * 3600, count: 1000 },
    },
  });
  return queue;
}

export async function enqueueWebhook(agentEventId: string): Promise<void> {
  await webhookQueue().add('deliver', { agentEventId }, { jobId: `evt-${agentEventId}` });
}

export async function closeWebhookQueue(): Promise<void> {
  await queue?.close();
  queue = undefined;
}

export function sign(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

async function deliver(job: Job<{ agentEventId: string }>): Promise<void> {
  const ev = await agentEvents.byId(job.data.agentEventId);
  if (!ev) return;
  const agent = await agents.byId(ev.agent_id);
  if (!agent?.webhook_url) return;
  const body = JSON.stringify({ ...ev.event, cursor: String(ev.id), agentId: ev.agent_id, createdAt: ev.created_at });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const deliveryId = crypto.randomUUID();
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'Troupe-Webhooks/1',
    'x-troupe-event': ev.type,
    'x-troupe-delivery': deliveryId,
    'x-troupe-timestamp': timestamp,
  };
  if (agent.webhook_secret_sealed) headers['x-troupe-signature'] = sign(unseal(agent.webhook_secret_sealed), timestamp, body);
  const started = Date.now();
  let status: number | null = null;
  let error: string | null = null;
  let blocked = false;
  try {
    const res = await outbound().fetch('webhook')(agent.webhook_url, { method: 'POST', headers, body, signal: AbortSignal.timeout(config.webhookTimeoutMs), redirect: 'manual' });
    status = res.status;
    await res.body?.cancel().catch(() => {});
    if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
  } catch (err) {
    const refused = blockedCause(err);
    blocked = refused !== null;
    error = refused ? `blocked by the outbound guard (${refused.range} address); an operator can allow it in TROUPE_OUTBOUND_ALLOW`
      : (err as Error).name === 'TimeoutError' ? `no answer within ${config.webhookTimeoutMs} ms` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
  }
  await deliveries.record({
    id: deliveryId, agent_id: agent.id, agent_event_id: String(ev.id), event_type: ev.type, url: agent.webhook_url,
    attempt: job.attemptsMade + 1, status_code: status, error, duration_ms: Date.now() - started, succeeded: error === null,
  });
  // Retrying a blocked address cannot succeed: one recorded attempt, no more.
  if (blocked) throw new UnrecoverableError(`webhook delivery blocked: ${error}`);
  if (error) throw new Error(`webhook delivery failed: ${error}`);
}

export function startWebhookWorker(log: Logger): Worker {
  const worker = new Worker(WEBHOOK_QUEUE, deliver, {
    connection: createRedis({ forBullmq: true, name: 'troupe-webhook-worker' }),
    prefix: prefix(),
    concurrency: 50,
  });
  worker.on('error', (err) => log.error({ err }, 'webhook worker error'));
  return worker;
}
