/**
 * Project membership and roles. Anything in a project the caller is not a member of is reported
 * as not found (404), so ids of other projects' objects reveal nothing. Viewers may read only.
 */
import { db } from '../db/knex.js';
import type { Principal } from '../http/auth.js';
import { badRequest, forbidden, notFound } from '../domain/errors.js';

export type Role = 'owner' | 'admin' | 'member' | 'viewer';
export type Need = 'read' | 'write' | 'admin';

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
  const row = await db('project_members')
    .where({ project_id: projectId, user_id: principal.userId, member_type: 'user' })
    .whereNull('deleted_at')
    .first('id', 'role');
  return row ? { projectId, memberId: row.id, role: row.role, principal } : null;
}

export async function requireProject(principal: Principal, projectId: string, need: Need = 'read'): Promise<Membership> {
  const m = await membershipOf(principal, projectId);
  if (!m) throw notFound('Project');
  if (need === 'write' && m.role === 'viewer') throw forbidden('Viewers cannot make changes in this project');
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
  const rows = await db('project_members').where({ user_id: principal.userId, member_type: 'user' }).whereNull('deleted_at').select('project_id');
  if (rows.length === 1) return requireProject(principal, rows[0].project_id, need);
  throw badRequest(rows.length === 0
    ? 'You are not a member of any project: create one with POST /api/v1/projects'
    : 'project_id is required: you are a member of several projects');
}

/** Every project the caller belongs to (for list routes without a project in the path). */
export async function projectIdsOf(principal: Principal): Promise<string[]> {
  if (principal.kind === 'agent') return [principal.projectId];
  const rows = await db('project_members').where({ user_id: principal.userId, member_type: 'user' }).whereNull('deleted_at').select('project_id');
  return rows.map((r) => r.project_id as string);
}
