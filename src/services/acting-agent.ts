/**
 * Seed 003 routes act as an agent: the one whose API key is used, or, for a user JWT, the agent
 * named by `asAgentId` in a project the user belongs to (write actions need a non-viewer role).
 */
import * as agents from '../db/repositories/agents.js';
import type { AgentRow } from '../db/repositories/agents.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, notFound } from '../domain/errors.js';
import { isUuid, requireProject, type Need } from './access.js';

export async function actingAgent(principal: Principal, asAgentId: string | undefined, need: Need): Promise<AgentRow> {
  if (principal.kind === 'agent') {
    const self = (await agents.liveById(principal.agentId)) as AgentRow;
    if (asAgentId && asAgentId !== self.id && asAgentId !== self.handle) throw notFound('Agent');
    return self;
  }
  if (!asAgentId) throw badRequest('asAgentId is required when acting with a user token (name the agent you act for)');
  const agent = isUuid(asAgentId)
    ? await agents.liveById(asAgentId)
    : one(asAgentId, await agents.liveWithHandleForUser(asAgentId, principal.userId));
  if (!agent) throw notFound('Agent');
  await requireProject(principal, agent.project_id, need).catch(() => {
    throw notFound('Agent');
  });
  return agent;
}

/**
 * The one agent a handle names among `rows`. Handles are unique within a project only, so a
 * handle found in several projects must be given as an id instead.
 */
export function one(handle: string, rows: AgentRow[]): AgentRow | undefined {
  if (rows.length > 1) throw badRequest(`"${handle}" is the handle of agents in ${rows.length} projects: name the agent by its id`);
  return rows[0];
}
