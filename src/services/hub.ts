/**
 * The agent hub (seed 003): every event addressed to an agent is
 *   1. appended to agent_events (its id is the /api/v1/updates cursor: nothing missed while
 *      disconnected is lost),
 *   2. published on the agent's Redis channel for its /ws connections on any api replica,
 *   3. published on the debug channel for GET /debug/events,
 *   4. queued for webhook delivery when the agent has a webhook_url.
 * Event shapes are exactly seed 003's: `{type, ...fields}`.
 */
import { db, type Db } from '../db/knex.js';
import { key, redis } from '../lib/redis.js';
import { enqueueWebhook } from '../runtime/webhooks.js';

export type HubEvent =
  | { type: 'task.created'; taskId: string; fromAgentId: string }
  | { type: 'task.approval_required'; taskId: string; fromAgentId: string }
  | { type: 'task.updated'; taskId: string; status: string }
  | { type: 'message.created'; taskId: string; messageId: string; fromAgentId: string }
  | { type: 'agent.connected'; connectionId: string; withAgentId: string; withAgentName: string; withPublicKey?: string }
  | { type: 'agent.disconnected'; connectionId: string; byAgentId: string };

export const agentChannel = (agentId: string) => key('agent', agentId);
export const debugChannel = () => key('debug');

export interface DeliveredEvent {
  cursor: string;
  agentId: string;
  event: HubEvent;
  createdAt: string;
}

export async function emitToAgent(agentId: string, event: HubEvent, conn: Db = db): Promise<DeliveredEvent> {
  const [row] = await conn('agent_events').insert({ agent_id: agentId, type: event.type, event: JSON.stringify(event) }).returning(['id', 'created_at']);
  const delivered: DeliveredEvent = { cursor: String(row.id), agentId, event, createdAt: new Date(row.created_at).toISOString() };
  const json = JSON.stringify(delivered);
  await redis().pipeline().publish(agentChannel(agentId), json).publish(debugChannel(), json).exec();
  const agent = await conn('agents').where({ id: agentId }).first('webhook_url');
  if (agent?.webhook_url) await enqueueWebhook(String(row.id));
  return delivered;
}

/** GET /api/v1/updates: an agent's events after a cursor, oldest first. */
export async function updatesFor(agentId: string, after: string | undefined, limit: number) {
  const q = db('agent_events').where({ agent_id: agentId }).orderBy('id').limit(limit + 1);
  if (after) q.andWhere('id', '>', after);
  const rows = await q;
  const page = rows.slice(0, limit);
  return {
    events: page.map((r) => ({ cursor: String(r.id), ...r.event, createdAt: r.created_at })),
    next_cursor: page.length ? String(page[page.length - 1].id) : (after ?? null),
    has_more: rows.length > limit,
  };
}

/** Retention of the updates log (run by the reaper). */
export async function pruneAgentEvents(retentionHours: number): Promise<number> {
  return db('agent_events').where('created_at', '<', db.raw(`now() - make_interval(hours => ?)`, [retentionHours])).del();
}
