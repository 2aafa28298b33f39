/**
 * The agents table, as the hub, tasks and pairs read it: lookups by id and by handle among an
 * agent's connections. (Agent management's own queries live with services/agents.ts.)
 */
import { db, type Db } from '../knex.js';

export type AgentKind = 'hosted' | 'external';

export interface AgentRow {
  id: string;
  project_id: string;
  agent_type_id: string | null;
  name: string;
  handle: string;
  avatar_url: string | null;
  kind: AgentKind;
  llm_provider: string;
  llm_model: string | null;
  llm_base_url: string | null;
  /** Sealed (lib/secrets.ts); never returned. */
  llm_api_key_sealed: string | null;
  system_prompt: string | null;
  can_clone_repos: boolean;
  can_create_prs: boolean;
  max_iterations: number;
  timeout_minutes: number;
  /** Whether tasks to this agent wait for its approval. */
  approval: 'auto' | 'require';
  webhook_url: string | null;
  webhook_secret_sealed: string | null;
  public_key: string | null;
  sandbox: Record<string, unknown>;
  script: unknown;
  project_role_id: string | null;
  member_id: string | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

/** Any agent, deleted or not (rows that name it outlive it). */
export async function byId(id: string, conn: Db = db): Promise<AgentRow | undefined> {
  return conn('agents').where({ id }).first();
}

export async function liveById(id: string): Promise<AgentRow | undefined> {
  return db('agents').where({ id }).whereNull('deleted_at').first();
}

/** Live agents with this handle that `agentId` has a live connection with (any project). */
export async function connectedWithHandle(agentId: string, handle: string): Promise<AgentRow[]> {
  return db('agents as a')
    .join('agent_connections as c', (j) => j.on('c.agent_id', 'a.id').orOn('c.with_agent_id', 'a.id'))
    .whereNull('c.deleted_at').whereNull('a.deleted_at')
    .where('a.handle', handle).whereNot('a.id', agentId)
    .andWhere((w) => w.where('c.agent_id', agentId).orWhere('c.with_agent_id', agentId))
    .distinct('a.*');
}

export async function nameOf(id: string): Promise<string | undefined> {
  return (await db('agents').where({ id }).first('name'))?.name;
}

export async function namesOf(ids: string[]): Promise<Map<string, string>> {
  const rows: Array<Pick<AgentRow, 'id' | 'name'>> = await db('agents').whereIn('id', ids).select('id', 'name');
  return new Map(rows.map((a) => [a.id, a.name]));
}

export async function webhookUrlOf(id: string, conn: Db = db): Promise<string | null> {
  return (await conn('agents').where({ id }).first('webhook_url'))?.webhook_url ?? null;
}
