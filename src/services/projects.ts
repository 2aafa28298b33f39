/** Projects and their human members. */
import { db } from '../db/knex.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { isUuid, requireProject, type Role } from './access.js';

export async function createProject(principal: Principal, input: { name: string; description?: string | null }) {
  if (principal.kind !== 'user') throw badRequest('Projects are created by users (a JWT), not by agent API keys');
  return db.transaction(async (tx) => {
    const [project] = await tx('projects')
      .insert({ name: input.name, description: input.description ?? null, created_by: principal.userId })
      .returning('*');
    await tx('project_members').insert({ project_id: project.id, member_type: 'user', user_id: principal.userId, role: 'owner' });
    return { ...serializeProject(project), role: 'owner' as Role };
  });
}

export async function listProjects(principal: Principal) {
  if (principal.kind === 'agent') {
    const p = await db('projects').where({ id: principal.projectId }).first();
    return p ? [{ ...serializeProject(p), role: 'member' }] : [];
  }
  const rows = await db('projects as p')
    .join('project_members as m', 'm.project_id', 'p.id')
    .where({ 'm.user_id': principal.userId, 'm.member_type': 'user' })
    .whereNull('m.deleted_at')
    .orderBy('p.created_at', 'desc')
    .select('p.*', 'm.role');
  return rows.map((r) => ({ ...serializeProject(r), role: r.role }));
}

export async function getProject(principal: Principal, projectId: string) {
  const m = await requireProject(principal, projectId, 'read');
  const p = await db('projects').where({ id: projectId }).first();
  return { ...serializeProject(p), role: m.role };
}

export async function listMembers(principal: Principal, projectId: string) {
  await requireProject(principal, projectId, 'read');
  const rows = await db('project_members').where({ project_id: projectId }).whereNull('deleted_at').orderBy('created_at');
  return rows.map(serializeMember);
}

export async function addMember(principal: Principal, projectId: string, input: { user_id: string; role: Role }) {
  const m = await requireProject(principal, projectId, 'admin');
  if (input.role === 'owner' && m.role !== 'owner') throw badRequest('Only an owner can add another owner');
  const existing = await db('project_members').where({ project_id: projectId, user_id: input.user_id }).whereNull('deleted_at').first();
  if (existing) throw conflict(`User ${input.user_id} is already a member of this project`);
  const [row] = await db('project_members')
    .insert({ project_id: projectId, member_type: 'user', user_id: input.user_id, role: input.role })
    .returning('*');
  return serializeMember(row);
}

export async function updateMember(principal: Principal, projectId: string, memberId: string, input: { role: Role }) {
  const m = await requireProject(principal, projectId, 'admin');
  const row = isUuid(memberId)
    ? await db('project_members').where({ id: memberId, project_id: projectId, member_type: 'user' }).whereNull('deleted_at').first()
    : null;
  if (!row) throw notFound('Member');
  if ((row.role === 'owner' || input.role === 'owner') && m.role !== 'owner') throw badRequest('Only an owner can change owners');
  await assertKeepsAnOwner(projectId, row, input.role);
  const [updated] = await db('project_members').where({ id: memberId }).update({ role: input.role }).returning('*');
  return serializeMember(updated);
}

export async function removeMember(principal: Principal, projectId: string, memberId: string) {
  const m = await requireProject(principal, projectId, 'admin');
  const row = isUuid(memberId)
    ? await db('project_members').where({ id: memberId, project_id: projectId, member_type: 'user' }).whereNull('deleted_at').first()
    : null;
  if (!row) throw notFound('Member');
  if (row.role === 'owner' && m.role !== 'owner') throw badRequest('Only an owner can remove an owner');
  await assertKeepsAnOwner(projectId, row, null);
  await db('project_members').where({ id: memberId }).update({ deleted_at: db.fn.now() });
  return { id: memberId, removed: true };
}

async function assertKeepsAnOwner(projectId: string, row: { id: string; role: string }, newRole: string | null) {
  if (row.role !== 'owner' || newRole === 'owner') return;
  const owners = await db('project_members').where({ project_id: projectId, role: 'owner' }).whereNull('deleted_at').count<{ count: string }[]>('id as count');
  if (Number(owners[0].count) <= 1) throw conflict('A project must keep at least one owner');
}

export function serializeProject(p: Record<string, any>) {
  return { id: p.id, name: p.name, description: p.description, created_by: p.created_by, created_at: p.created_at, updated_at: p.updated_at };
}

function serializeMember(r: Record<string, any>) {
  return { id: r.id, project_id: r.project_id, member_type: r.member_type, user_id: r.user_id, agent_id: r.agent_id, role: r.role, created_at: r.created_at };
}
