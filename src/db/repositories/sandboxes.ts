/**
 * The sandboxes table: every SQL statement about sandboxes lives here, with a typed row.
 * Services and the runtime call these; none of them builds SQL for this table.
 */
import { db, type Db } from '../knex.js';

export type SandboxState = 'active' | 'paused' | 'stopped';

export interface SandboxLimits {
  memory_mb?: number;
  cpus?: number;
  pids?: number;
  network?: 'none' | 'bridge';
}

export interface SandboxRow {
  id: string;
  project_id: string;
  agent_id: string | null;
  image: string;
  /** AES-GCM sealed JSON of the env (lib/secrets.ts); never returned. */
  env_sealed: string | null;
  env_keys: string[];
  limits: SandboxLimits;
  metadata: Record<string, unknown>;
  timeout_seconds: number | null;
  container_id: string | null;
  state: SandboxState;
  /** Set when the sandbox was made for one session, and goes with it. */
  owner_session_id: string | null;
  /** The worker host its container lives on (hosts.ts); null until placed, or once its host was lost. */
  host_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export type NewSandbox = Pick<SandboxRow, 'project_id' | 'image' | 'env_sealed' | 'env_keys' | 'limits' | 'metadata' | 'timeout_seconds'> & {
  id?: string;
  agent_id: string;
  owner_session_id?: string;
};

export async function insert(conn: Db, row: NewSandbox): Promise<SandboxRow> {
  const [out] = await conn('sandboxes')
    .insert({
      ...row,
      env_keys: JSON.stringify(row.env_keys),
      limits: JSON.stringify(row.limits),
      metadata: JSON.stringify(row.metadata),
    })
    .returning('*');
  return out as SandboxRow;
}

export async function byId(id: string, conn: Db = db): Promise<SandboxRow | undefined> {
  return conn('sandboxes').where({ id }).first();
}

/** Only within these projects (another project's sandbox is not found). */
export async function inProjects(projectIds: string[], id: string): Promise<SandboxRow | undefined> {
  return db('sandboxes').where({ id }).whereIn('project_id', projectIds).first();
}

export async function list(projectIds: string[], opts: { state?: SandboxState; agentId?: string; limit: number }): Promise<SandboxRow[]> {
  const q = db('sandboxes').whereIn('project_id', projectIds).orderBy('created_at', 'desc').limit(opts.limit);
  if (opts.state) q.andWhere({ state: opts.state });
  if (opts.agentId) q.andWhere({ agent_id: opts.agentId });
  return q;
}

export async function setState(id: string, state: SandboxState): Promise<void> {
  await db('sandboxes').where({ id }).update({ state, updated_at: db.fn.now() });
}

/**
 * Compare-and-set: moves the sandbox to `to` only from one of `from`. False when another request
 * got there first (a concurrent delete must not be undone by a late pause or resume).
 */
export async function transition(id: string, from: SandboxState[], to: SandboxState): Promise<boolean> {
  const n = await db('sandboxes').where({ id }).whereIn('state', from).update({ state: to, updated_at: db.fn.now() });
  return n > 0;
}

export async function setContainer(id: string, containerId: string): Promise<void> {
  await db('sandboxes').where({ id }).update({ container_id: containerId, updated_at: db.fn.now() });
}

export async function remove(id: string): Promise<void> {
  await db('sandboxes').where({ id }).del();
}

/** Default image of an agent type (a sandbox's image when neither request nor agent names one). */
export async function agentTypeImage(conn: Db, agentTypeId: string): Promise<string | null> {
  const t = await conn('agent_types').where({ id: agentTypeId }).first('default_image');
  return t?.default_image ?? null;
}

/** Sandboxes not yet stopped that have outlived their `timeout` (oldest first). */
export async function pastTimeout(limit: number): Promise<SandboxRow[]> {
  return db('sandboxes')
    .whereNot({ state: 'stopped' })
    .whereNotNull('timeout_seconds')
    .andWhere('created_at', '<', db.raw('now() - make_interval(secs => timeout_seconds)'))
    .orderBy('created_at')
    .limit(limit);
}

/** Sandboxes by id with their owning session's status (the reaper's view of containers it finds). */
export async function withOwnerStatus(ids: string[]): Promise<Array<Pick<SandboxRow, 'id' | 'state' | 'owner_session_id'> & { session_status: string | null }>> {
  return db('sandboxes as sb')
    .leftJoin('sessions as s', 's.id', 'sb.owner_session_id')
    .whereIn('sb.id', ids)
    .select('sb.id', 'sb.state', 'sb.owner_session_id', 's.status as session_status');
}
