/**
 * Seed 003 routes act as an agent: the one whose API key is used, or, for a user JWT, the agent
 * named by `asAgentId` in a project the user belongs to (write actions need a non-viewer role).
 */
import { db } from '../db/knex.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, notFound } from '../domain/errors.js';
import { isUuid, requireProject, type Need } from './access.js';

export type AgentRow = Record<string, any> & { id: string; project_id: string; name: string };

export async function actingAgent(principal: Principal, asAgentId: string | undefined, need: Need): Promise<AgentRow> {
  if (principal.kind === 'agent') {
    const self = (await db('agents').where({ id: principal.agentId }).whereNull('deleted_at').first()) as AgentRow;
    if (asAgentId && asAgentId !== self.id && asAgentId !== self.handle) throw notFound('Agent');
    return self;
  }
  if (!asAgentId) throw badRequest('asAgentId is required when acting with a user token (name the agent you act for)');
  const agent = isUuid(asAgentId)
    ? await db('agents').where({ id: asAgentId }).whereNull('deleted_at').first()
    : one(asAgentId, await db('agents as a')
      .join('project_members as m', 'm.project_id', 'a.project_id')
      .where({ 'a.handle': asAgentId, 'm.user_id': principal.userId, 'm.member_type': 'user' })
      .whereNull('a.deleted_at').whereNull('m.deleted_at')
      .select('a.*'));
  if (!agent) throw notFound('Agent');
  await requireProject(principal, agent.project_id, need).catch(() => {
    throw notFound('Agent');
  });
  return agent as AgentRow;
}

/**
 * The one agent a handle names among `rows`. Handles are unique within a project only, so a
 * handle found in several projects must be given as an id instead.
 */
export function one(handle: string, rows: AgentRow[]): AgentRow | undefined {
  if (rows.length > 1) throw badRequest(`"${handle}" is the handle of agents in ${rows.length} projects: name the agent by its id`);
  return rows[0];
}
