/** Webhook delivery attempts (webhook_deliveries), one row per attempt; the worker records them. */
import { db } from '../knex.js';

export interface WebhookDeliveryRow {
  id: string;
  agent_id: string;
  /** bigint: node-postgres returns it as a string. */
  agent_event_id: string;
  event_type: string;
  url: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number | null;
  succeeded: boolean;
  created_at: Date;
}

/** The agent's delivery attempts, newest first. */
export async function ofAgent(agentId: string, limit: number, offset: number): Promise<WebhookDeliveryRow[]> {
  return db('webhook_deliveries').where({ agent_id: agentId }).orderBy('created_at', 'desc').limit(limit).offset(offset);
}

export type NewWebhookDelivery = Omit<WebhookDeliveryRow, 'created_at'>;

/** Records one delivery attempt (the worker, after each try). */
export async function record(attempt: NewWebhookDelivery): Promise<void> {
  await db('webhook_deliveries').insert(attempt);
}
