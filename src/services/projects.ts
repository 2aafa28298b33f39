/** Projects and their human members. */
import * as projects from '../db/repositories/projects.js';
import type { MemberRow, ProjectRow } from '../db/repositories/projects.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { isUuid, requireProject, type Role } from './access.js';

export async function createProject(principal: Principal, input: { name: string; description?: string | null }) {
  if (principal.kind !== 'user') throw badRequest('Projects are created by users (a JWT), not by agent API keys');
  const project = await projects.createWithOwner({ name: input.name, description: input.description ?? null, userId: principal.userId });
  return { ...serializeProject(project), role: 'owner' as Role };
}

export async function listProjects(principal: Principal) {
  if (principal.kind === 'agent') {
    const p = await projects.byId(principal.projectId);
    return p ? [{ ...serializeProject(p), role: 'member' }] : [];
  }
  const rows = await projects.ofUser(principal.userId);
  return rows.map((r) => ({ ...serializeProject(r), role: r.role }));
}

export async function getProject(principal: Principal, projectId: string) {
  const m = await requireProject(principal, projectId, 'read');
  const p = (await projects.byId(projectId))!;
  return { ...serializeProject(p), role: m.role };
}

export async function listMembers(principal: Principal, projectId: string) {
  await requireProject(principal, projectId, 'read');
  return (await projects.members(projectId)).map(serializeMember);
}

export async function addMember(principal: Principal, projectId: string, input: { user_id: string; role: Role }) {
  const m = await requireProject(principal, projectId, 'admin');
  if (input.role === 'owner' && m.role !== 'owner') throw badRequest('Only an owner can add another owner');
  const existing = await projects.currentUserMember(projectId, input.user_id);
  if (existing) throw conflict(`User ${input.user_id} is already a member of this project`);
  return serializeMember(await projects.insertUserMember(projectId, input.user_id, input.role));
}

export async function updateMember(principal: Principal, projectId: string, memberId: string, input: { role: Role }) {
  const m = await requireProject(principal, projectId, 'admin');
  const row = isUuid(memberId) ? await projects.userMemberById(projectId, memberId) : null;
  if (!row) throw notFound('Member');
  if ((row.role === 'owner' || input.role === 'owner') && m.role !== 'owner') throw badRequest('Only an owner can change owners');
  await assertKeepsAnOwner(projectId, row, input.role);
  return serializeMember(await projects.setRole(memberId, input.role));
}

export async function removeMember(principal: Principal, projectId: string, memberId: string) {
  const m = await requireProject(principal, projectId, 'admin');
  const row = isUuid(memberId) ? await projects.userMemberById(projectId, memberId) : null;
  if (!row) throw notFound('Member');
  if (row.role === 'owner' && m.role !== 'owner') throw badRequest('Only an owner can remove an owner');
  await assertKeepsAnOwner(projectId, row, null);
  await projects.removeMember(memberId);
  return { id: memberId, removed: true };
}

async function assertKeepsAnOwner(projectId: string, row: { id: string; role: string }, newRole: string | null) {
  if (row.role !== 'owner' || newRole === 'owner') return;
  if ((await projects.ownerCount(projectId)) <= 1) throw conflict('A project must keep at least one owner');
}

export function serializeProject(p: ProjectRow) {
  return { id: p.id, name: p.name, description: p.description, created_by: p.created_by, created_at: p.created_at, updated_at: p.updated_at };
}

function serializeMember(r: MemberRow) {
  return { id: r.id, project_id: r.project_id, member_type: r.member_type, user_id: r.user_id, agent_id: r.agent_id, role: r.role, created_at: r.created_at };
}
