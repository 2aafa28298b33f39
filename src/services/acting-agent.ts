/**
 * Seed 003 routes act as an agent: the one whose API key is used, or, for a user JWT, the agent
 * named by `asAgentId` in a project the user belongs to (write actions need a non-viewer role).
 */
import { db } from '../db/knex.js';
import type { Principal } from '../http/auth.js';
import { badRequest, notFound } from '../http/errors.js';
import { isUuid, requireProject, type Need } from './access.js';

export type AgentRow = Record<string, any> & { id: string; project_id: string; name: string };

export async function actingAgent(principal: Principal, asAgentId: string | undefined, need: Need): Promise<AgentRow> {
  if (principal.kind === 'agent') {
    if (asAgentId && asAgentId !== principal.agentId) throw notFound('Agent');
    return (await db('agents').where({ id: principal.agentId }).whereNull('deleted_at').first()) as AgentRow;
  }
  if (!asAgentId) throw badRequest('asAgentId is required when acting with a user token (name the agent you act for)');
  const agent = isUuid(asAgentId) ? await db('agents').where({ id: asAgentId }).whereNull('deleted_at').first() : null;
  if (!agent) throw notFound('Agent');
  await requireProject(principal, agent.project_id, need).catch(() => {
    throw notFound('Agent');
  });
  return agent as AgentRow;
}
