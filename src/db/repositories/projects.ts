/**
 * Projects and their members (project_members). A member is a user or an agent; removing one
 * sets deleted_at, so rows that name it stay valid.
 */
import { db, type Db } from '../knex.js';

export type MemberRole = 'owner' | 'admin' | 'member' | 'viewer';

export interface ProjectRow {
  id: string;
  name: string;
  description: string | null;
  /** The user id of whoever created it. */
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

export interface MemberRow {
  id: string;
  project_id: string;
  member_type: 'user' | 'agent';
  user_id: string | null;
  agent_id: string | null;
  role: MemberRole;
  created_at: Date;
  deleted_at: Date | null;
}

/** The project and its creator as owner, together. */
export async function createWithOwner(input: { name: string; description: string | null; userId: string }): Promise<ProjectRow> {
  return db.transaction(async (tx) => {
    const [project] = await tx('projects').insert({ name: input.name, description: input.description, created_by: input.userId }).returning('*');
    await tx('project_members').insert({ project_id: project.id, member_type: 'user', user_id: input.userId, role: 'owner' });
    return project as ProjectRow;
  });
}

export async function byId(id: string): Promise<ProjectRow | undefined> {
  return db('projects').where({ id }).first();
}

/** The user's projects with their role in each, newest first. */
export async function ofUser(userId: string): Promise<Array<ProjectRow & { role: MemberRole }>> {
  return db('projects as p')
    .join('project_members as m', 'm.project_id', 'p.id')
    .where({ 'm.user_id': userId, 'm.member_type': 'user' })
    .whereNull('m.deleted_at')
    .orderBy('p.created_at', 'desc')
    .select('p.*', 'm.role');
}

/** Current members, oldest first. */
export async function members(projectId: string): Promise<MemberRow[]> {
  return db('project_members').where({ project_id: projectId }).whereNull('deleted_at').orderBy('created_at');
}

/** The user's current membership of the project (its member id and role). */
export async function userMembership(projectId: string, userId: string): Promise<Pick<MemberRow, 'id' | 'role'> | undefined> {
  return db('project_members')
    .where({ project_id: projectId, user_id: userId, member_type: 'user' })
    .whereNull('deleted_at')
    .first('id', 'role');
}

/** The projects the user is a current member of. */
export async function projectIdsOfUser(userId: string): Promise<string[]> {
  const rows: Array<Pick<MemberRow, 'project_id'>> = await db('project_members').where({ user_id: userId, member_type: 'user' }).whereNull('deleted_at').select('project_id');
  return rows.map((r) => r.project_id);
}

export async function currentUserMember(projectId: string, userId: string): Promise<MemberRow | undefined> {
  return db('project_members').where({ project_id: projectId, user_id: userId }).whereNull('deleted_at').first();
}

/** A current user member of the project, by member id. */
export async function userMemberById(projectId: string, memberId: string): Promise<MemberRow | undefined> {
  return db('project_members').where({ id: memberId, project_id: projectId, member_type: 'user' }).whereNull('deleted_at').first();
}

export async function insertUserMember(projectId: string, userId: string, role: MemberRole): Promise<MemberRow> {
  const [row] = await db('project_members').insert({ project_id: projectId, member_type: 'user', user_id: userId, role }).returning('*');
  return row;
}

/** The member row of a new agent (role member); its id. */
export async function insertAgentMember(projectId: string, agentId: string, conn: Db = db): Promise<string> {
  const [row] = await conn('project_members').insert({ project_id: projectId, member_type: 'agent', agent_id: agentId, role: 'member' }).returning('id');
  return row.id as string;
}

export async function setRole(memberId: string, role: MemberRole): Promise<MemberRow> {
  const [row] = await db('project_members').where({ id: memberId }).update({ role }).returning('*');
  return row;
}

export async function removeMember(memberId: string, conn: Db = db): Promise<void> {
  await conn('project_members').where({ id: memberId }).update({ deleted_at: conn.fn.now() });
}

export async function ownerCount(projectId: string): Promise<number> {
  const [{ count }] = await db('project_members').where({ project_id: projectId, role: 'owner' }).whereNull('deleted_at').count<{ count: string }[]>('id as count');
  return Number(count);
}
