/** An agent's skills (agent_skills): markdown, given inline or fetched once from a URL. */
import { db } from '../knex.js';

export type SkillSource = 'inline' | 'github_url';

export interface SkillRow {
  id: string;
  agent_id: string;
  skill_name: string;
  skill_source: SkillSource;
  skill_content: string | null;
  source_url: string | null;
  description: string | null;
  triggers: string[];
  is_enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export type SkillChanges = Partial<Pick<SkillRow, 'skill_name' | 'skill_content' | 'description' | 'triggers' | 'is_enabled'>>;

export type NewSkill = Pick<SkillRow, 'agent_id' | 'skill_name' | 'skill_source' | 'skill_content' | 'source_url' | 'description' | 'triggers' | 'is_enabled'>;

/** The agent's skills, oldest first. */
export async function ofAgent(agentId: string): Promise<SkillRow[]> {
  return db('agent_skills').where({ agent_id: agentId }).orderBy('created_at');
}

/** The skills the model may be given (enabled), oldest first. */
export async function enabledOfAgent(agentId: string): Promise<SkillRow[]> {
  return db('agent_skills').where({ agent_id: agentId, is_enabled: true }).orderBy('created_at');
}

/** The agent's skill with this id (a uuid). */
export async function byIdOfAgent(agentId: string, id: string): Promise<SkillRow | undefined> {
  return db('agent_skills').where({ id, agent_id: agentId }).first();
}

export async function insert(skill: NewSkill): Promise<SkillRow> {
  const [row] = await db('agent_skills').insert({ ...skill, triggers: JSON.stringify(skill.triggers) }).returning('*');
  return row as SkillRow;
}

/** Updates the given columns and updated_at; the updated row. */
export async function update(id: string, changes: SkillChanges): Promise<SkillRow> {
  const cols: Record<string, unknown> = { ...changes };
  if ('triggers' in changes) cols.triggers = JSON.stringify(changes.triggers);
  const [row] = await db('agent_skills').where({ id }).update({ ...cols, updated_at: db.fn.now() }).returning('*');
  return row as SkillRow;
}

export async function remove(id: string): Promise<void> {
  await db('agent_skills').where({ id }).del();
}
