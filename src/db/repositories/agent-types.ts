/**
 * Agent types (agent_types): built-in ones (project_id null, visible to every project) and a
 * project's own. Their defaults fill in what an agent of the type leaves unset.
 */
import { db } from '../knex.js';

export interface AgentTypeRow {
  id: string;
  /** null: built in. */
  project_id: string | null;
  name: string;
  slug: string;
  description: string | null;
  default_system_prompt: string | null;
  default_image: string | null;
  tools: string[];
  created_at: Date;
  updated_at: Date;
}

export type NewAgentType = Pick<AgentTypeRow, 'name' | 'slug' | 'description' | 'default_system_prompt' | 'default_image' | 'tools'> & { project_id: string };

/** The id of a type the project may use (built in or its own), by id (a uuid) or by slug. */
export async function visibleTo(projectId: string, by: { id: string } | { slug: string }): Promise<string | undefined> {
  const q = db('agent_types').where((w) => w.whereNull('project_id').orWhere({ project_id: projectId }));
  const row = await q.andWhere('id' in by ? { id: by.id } : { slug: by.slug }).first('id');
  return row?.id;
}

export async function byId(id: string): Promise<AgentTypeRow | undefined> {
  return db('agent_types').where({ id }).first();
}

export async function byIds(ids: string[]): Promise<AgentTypeRow[]> {
  return db('agent_types').whereIn('id', ids);
}

/** Built-in types first, then the project's own (if one is named), each by name. */
export async function listVisible(projectId?: string): Promise<AgentTypeRow[]> {
  return db('agent_types')
    .where((w) => {
      w.whereNull('project_id');
      if (projectId) w.orWhere({ project_id: projectId });
    })
    .orderBy([{ column: 'project_id', order: 'desc', nulls: 'first' }, { column: 'name' }]);
}

/** Whether the slug is taken by a built-in type or one of the project's. */
export async function slugTaken(projectId: string, slug: string): Promise<boolean> {
  return Boolean(await db('agent_types').where({ slug }).andWhere((w) => w.whereNull('project_id').orWhere({ project_id: projectId })).first('id'));
}

export async function insert(type: NewAgentType): Promise<AgentTypeRow> {
  const [row] = await db('agent_types').insert({ ...type, tools: JSON.stringify(type.tools) }).returning('*');
  return row as AgentTypeRow;
}
