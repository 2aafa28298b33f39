/**
 * Project membership and roles. Anything in a project the caller is not a member of is reported
 * as not found (404), so ids of other projects' objects reveal nothing. Viewers may read only.
 *
 * An agent's API key acts only as that agent (SPEC section 3): the hub routes, its own sessions
 * and its own tasks. It never manages anything (`need: 'manage'` and `'admin'` refuse it with
 * 403), and sees or starts only its own agent's sessions, sandboxes, chats and pairs (`ownAgent`,
 * `assertOwn`, `assertActsAsSelf`, called by the routes).
 */
import * as agents from '../db/repositories/agents.js';
import * as projects from '../db/repositories/projects.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, forbidden, notFound } from '../domain/errors.js';

export type Role = 'owner' | 'admin' | 'member' | 'viewer';
/**
 * read: any member. write: not a viewer. manage: configure the project's agents (agents, API keys,
 * webhooks, MCP servers, skills, agent types): a user who is not a viewer, never an agent key.
 * admin: members and roles: project owners and admins.
 */
export type Need = 'read' | 'write' | 'manage' | 'admin';

export const AGENT_KEY_REFUSED =
  'An agent API key acts only as its own agent (hub routes, its own sessions and tasks): ' +
  'managing agents, API keys, webhooks, MCP servers, skills, agent types, projects or members needs a user token';

/** 403 for agent API keys: the one rule for everything that manages rather than acts. */
export function refuseAgentKey(principal: Principal): void {
  if (principal.kind === 'agent') throw forbidden(AGENT_KEY_REFUSED);
}

export interface Membership {
  projectId: string;
  memberId: string;
  role: Role;
  principal: Principal;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID_RE.test(s);

export async function membershipOf(principal: Principal, projectId: string): Promise<Membership | null> {
  if (!isUuid(projectId)) return null;
  if (principal.kind === 'agent') {
    return principal.projectId === projectId
      ? { projectId, memberId: principal.memberId, role: 'member', principal }
      : null;
  }
  const row = await projects.userMembership(projectId, principal.userId);
  return row ? { projectId, memberId: row.id, role: row.role, principal } : null;
}

export async function requireProject(principal: Principal, projectId: string, need: Need = 'read'): Promise<Membership> {
  const m = await membershipOf(principal, projectId);
  if (!m) throw notFound('Project');
  if (need === 'manage' || need === 'admin') refuseAgentKey(principal);
  if (need !== 'read' && m.role === 'viewer') throw forbidden('Viewers cannot make changes in this project');
  if (need === 'admin' && !['owner', 'admin'].includes(m.role)) throw forbidden('Only project owners and admins can do this');
  return m;
}

/**
 * For routes without a project in the path (seeds 001/002/003): an API key carries its project;
 * a user names it with project_id, or, if they belong to exactly one project, that one is used.
 */
export async function resolveProject(principal: Principal, projectId: string | undefined, need: Need): Promise<Membership> {
  if (principal.kind === 'agent') {
    if (projectId && projectId !== principal.projectId) throw notFound('Project');
    return requireProject(principal, principal.projectId, need);
  }
  if (projectId) return requireProject(principal, projectId, need);
  const ids = await projects.projectIdsOfUser(principal.userId);
  if (ids.length === 1) return requireProject(principal, ids[0], need);
  throw badRequest(ids.length === 0
    ? 'You are not a member of any project: create one with POST /api/v1/projects'
    : 'project_id is required: you are a member of several projects');
}

/** Every project the caller belongs to (for list routes without a project in the path). */
export async function projectIdsOf(principal: Principal): Promise<string[]> {
  if (principal.kind === 'agent') return [principal.projectId];
  return projects.projectIdsOfUser(principal.userId);
}

/** The agent an API key acts as, or undefined for a user (no per-agent restriction). */
export function ownAgent(principal: Principal): string | undefined {
  return principal.kind === 'agent' ? principal.agentId : undefined;
}

/**
 * For an agent key, a session (sandbox, pair...) of another agent is reported as not found, as an
 * object of another project would be. `agentIds` are the agents the object belongs to.
 */
export function assertOwn<T>(principal: Principal, row: T, agentIds: Array<string | null | undefined>, what: string): T {
  if (principal.kind === 'agent' && !agentIds.includes(principal.agentId)) throw notFound(what);
  return row;
}

/** A session (conversation) row as the caller may see it: 404 for an agent key and another agent's session. */
export function ownSession<T extends object>(principal: Principal, s: T, what = 'Session'): T {
  return assertOwn(principal, s, [(s as { agent_id?: string | null }).agent_id], what);
}

/**
 * An agent key starts sessions, sandboxes and chats only for its own agent, lists only its own
 * conversations and posts only as itself: the agent named (by id or handle; any one of `refs`)
 * must be the key's own, else 403. Asking another agent goes through a hub task. Users pass.
 */
export async function assertActsAsSelf(principal: Principal, refs: string | null | undefined | Array<string | null | undefined>): Promise<void> {
  if (principal.kind !== 'agent') return;
  const named = (Array.isArray(refs) ? refs : [refs]).filter((r): r is string => !!r);
  if (named.includes(principal.agentId)) return;
  const handle = named.length ? await agents.handleOf(principal.agentId) : undefined;
  if (!handle || !named.includes(handle)) {
    throw forbidden('An agent API key acts only as its own agent: it cannot act for another agent, nor see or start its sessions ' +
      '(ask that agent with a task: POST /api/v1/tasks)');
  }
}
