/**
 * The agents table: every SQL statement about agents lives here, with the one typed row. Agent
 * management (services/agents.ts), acting as an agent, the hub, tasks and pairs call these.
 * Secrets (the model key, the webhook secret) are stored sealed and never leave through a view.
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
  /** Re-run a tool call cut short by a crash or pause (default false: record it as interrupted). */
  rerun_interrupted_tools: boolean;
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

/** The columns agent management writes (sandbox and script as values; encoded here). */
export type AgentChanges = Partial<Pick<AgentRow,
  | 'agent_type_id' | 'name' | 'handle' | 'avatar_url' | 'kind' | 'llm_provider' | 'llm_model' | 'llm_base_url'
  | 'llm_api_key_sealed' | 'system_prompt' | 'can_clone_repos' | 'can_create_prs' | 'max_iterations' | 'timeout_minutes' | 'rerun_interrupted_tools'
  | 'approval' | 'webhook_url' | 'webhook_secret_sealed' | 'public_key' | 'sandbox' | 'script' | 'project_role_id'>>;

export type NewAgent = AgentChanges & Pick<AgentRow, 'project_id' | 'name' | 'handle'>;

/** Where the model key is sent, and whether one is stored. */
export type AgentDestination = Pick<AgentRow, 'llm_provider' | 'llm_base_url' | 'llm_api_key_sealed'>;

/** jsonb columns are written as JSON text (an array or object would otherwise be taken for a Postgres array). */
function encode(changes: AgentChanges): Record<string, unknown> {
  const cols: Record<string, unknown> = { ...changes };
  if ('sandbox' in changes) cols.sandbox = JSON.stringify(changes.sandbox ?? {});
  if ('script' in changes) cols.script = changes.script === null ? null : JSON.stringify(changes.script);
  return cols;
}

/** Any agent, deleted or not (rows that name it outlive it). */
export async function byId(id: string, conn: Db = db): Promise<AgentRow | undefined> {
  return conn('agents').where({ id }).first();
}

export async function liveById(id: string): Promise<AgentRow | undefined> {
  return db('agents').where({ id }).whereNull('deleted_at').first();
}

/**
 * A live agent of the project, by handle, or by id or handle (`idOrHandle` must then be a uuid:
 * the caller decides, as comparing a non-uuid with the id column is an error).
 */
export async function liveInProject(projectId: string, by: { handle: string } | { idOrHandle: string }, conn: Db = db): Promise<AgentRow | undefined> {
  const q = conn('agents').where({ project_id: projectId }).whereNull('deleted_at');
  if ('idOrHandle' in by) q.andWhere((w) => w.where({ id: by.idOrHandle }).orWhere({ handle: by.idOrHandle }));
  else q.andWhere({ handle: by.handle });
  return q.first();
}

/** The project's live agents, oldest first. */
export async function liveOfProject(projectId: string): Promise<AgentRow[]> {
  return db('agents').where({ project_id: projectId }).whereNull('deleted_at').orderBy('created_at');
}

/** Live agents with this handle in the projects the user is a (current) member of. */
export async function liveWithHandleForUser(handle: string, userId: string): Promise<AgentRow[]> {
  return db('agents as a')
    .join('project_members as m', 'm.project_id', 'a.project_id')
    .where({ 'a.handle': handle, 'm.user_id': userId, 'm.member_type': 'user' })
    .whereNull('a.deleted_at').whereNull('m.deleted_at')
    .select('a.*');
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

/** Deleted or not. */
export async function handleOf(id: string): Promise<string | undefined> {
  return (await db('agents').where({ id }).first('handle'))?.handle;
}

export async function namesOf(ids: string[]): Promise<Map<string, string>> {
  const rows: Array<Pick<AgentRow, 'id' | 'name'>> = await db('agents').whereIn('id', ids).select('id', 'name');
  return new Map(rows.map((a) => [a.id, a.name]));
}

export async function webhookUrlOf(id: string, conn: Db = db): Promise<string | null> {
  return (await conn('agents').where({ id }).first('webhook_url'))?.webhook_url ?? null;
}

/** Inserts the agent; its id. A taken handle fails with the unique violation (23505). */
export async function insert(agent: NewAgent, conn: Db = db): Promise<string> {
  const [row] = await conn('agents').insert(encode(agent)).returning('id');
  return row.id as string;
}

export async function setMember(id: string, memberId: string, conn: Db = db): Promise<void> {
  await conn('agents').where({ id }).update({ member_id: memberId });
}

/** Locks the row (in `tx`) and reads where its model key goes, so a decision on it holds until commit. */
export async function destinationForUpdate(id: string, tx: Db): Promise<AgentDestination | undefined> {
  return tx('agents').where({ id }).forUpdate().first('llm_provider', 'llm_base_url', 'llm_api_key_sealed');
}

/** Updates the given columns and updated_at. */
export async function update(id: string, changes: AgentChanges, conn: Db = db): Promise<void> {
  await conn('agents').where({ id }).update({ ...encode(changes), updated_at: conn.fn.now() });
}

export async function softDelete(id: string, conn: Db = db): Promise<void> {
  await conn('agents').where({ id }).update({ deleted_at: conn.fn.now() });
}
