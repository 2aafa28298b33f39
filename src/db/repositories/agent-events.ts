/**
 * agent_events: the log of hub events addressed to each agent. Its bigserial id is the
 * /api/v1/updates cursor, so an agent that was away reads what it missed in order.
 */
import type { HubEvent } from '../../domain/hub-events.js';
import { db, type Db } from '../knex.js';

export interface AgentEventRow {
  /** bigserial: node-postgres returns it as a string. */
  id: string;
  agent_id: string;
  type: HubEvent['type'];
  event: HubEvent;
  created_at: Date;
}

export async function append(agentId: string, event: HubEvent, conn: Db = db): Promise<Pick<AgentEventRow, 'id' | 'created_at'>> {
  const [row] = await conn('agent_events').insert({ agent_id: agentId, type: event.type, event: JSON.stringify(event) }).returning(['id', 'created_at']);
  return row;
}

/** Up to `limit` of the agent's events after the cursor, oldest first. */
export async function after(agentId: string, cursor: string | undefined, limit: number): Promise<AgentEventRow[]> {
  const q = db('agent_events').where({ agent_id: agentId }).orderBy('id').limit(limit);
  if (cursor) q.andWhere('id', '>', cursor);
  return q;
}

export async function pruneOlderThan(hours: number): Promise<number> {
  return db('agent_events').where('created_at', '<', db.raw(`now() - make_interval(hours => ?)`, [hours])).del();
}

export async function byId(id: string): Promise<AgentEventRow | undefined> {
  return db('agent_events').where({ id }).first();
}
