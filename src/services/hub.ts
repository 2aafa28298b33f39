/**
 * The agent hub (seed 003): every event addressed to an agent is appended to agent_events (its
 * id is the /api/v1/updates cursor: nothing missed while disconnected is lost); the event
 * pipeline then publishes it on the agent's channel (its /ws connections on any api replica)
 * and the debug channel (GET /debug/events), and queues its webhook when the agent has one.
 * Event shapes are exactly seed 003's: `{type, ...fields}`.
 */
import type { Db } from '../db/knex.js';
import * as agentEvents from '../db/repositories/agent-events.js';
import * as agents from '../db/repositories/agents.js';
import type { DeliveredEvent, HubEvent } from '../domain/hub-events.js';
import { ports } from '../domain/ports.js';

export type { DeliveredEvent, HubEvent };

/**
 * Records the event (its id is the updates cursor), then hands it to the event pipeline, whose
 * listeners publish it to the agent's /ws connections and the debug stream and queue its webhook.
 */
export async function emitToAgent(agentId: string, event: HubEvent, conn?: Db): Promise<DeliveredEvent> {
  const row = await agentEvents.append(agentId, event, conn);
  const webhookUrl = await agents.webhookUrlOf(agentId, conn);
  const delivered: DeliveredEvent = { cursor: String(row.id), agentId, event, createdAt: new Date(row.created_at).toISOString() };
  await ports().events.agentEvent({ ...delivered, hasWebhook: Boolean(webhookUrl) });
  return delivered;
}

/** GET /api/v1/updates: an agent's events after a cursor, oldest first. */
export async function updatesFor(agentId: string, after: string | undefined, limit: number) {
  const rows = await agentEvents.after(agentId, after, limit + 1);
  const page = rows.slice(0, limit);
  return {
    events: page.map((r) => ({ cursor: String(r.id), ...r.event, createdAt: r.created_at })),
    next_cursor: page.length ? String(page[page.length - 1].id) : (after ?? null),
    has_more: rows.length > limit,
  };
}

/** Retention of the updates log (run by the reaper). */
export async function pruneAgentEvents(retentionHours: number): Promise<number> {
  return agentEvents.pruneOlderThan(retentionHours);
}
