/**
 * A project's repositories (issue 14): where agents clone from and open pull requests. The access
 * token is a secret: sealed (lib/secrets.ts) in token_sealed, never returned.
 */
import { db, type Db } from '../knex.js';

export type Forge = 'github';

export interface RepositoryRow {
  id: string;
  project_id: string;
  /** Unique in the project; also the sandbox directory /workspace/<name>. */
  name: string;
  clone_url: string;
  default_branch: string;
  forge: Forge;
  api_base_url: string;
  /** owner/name on the forge. */
  full_name: string;
  /** Sealed access token; never returned. */
  token_sealed: string | null;
  created_at: Date;
  updated_at: Date;
}

export type RepositoryChanges = Partial<Pick<RepositoryRow,
  'name' | 'clone_url' | 'default_branch' | 'forge' | 'api_base_url' | 'full_name' | 'token_sealed'>>;

export type NewRepository = RepositoryChanges & Pick<RepositoryRow, 'project_id' | 'name' | 'clone_url' | 'forge' | 'api_base_url' | 'full_name'>;

export async function ofProject(projectId: string): Promise<RepositoryRow[]> {
  return db('repositories').where({ project_id: projectId }).orderBy('created_at');
}

/** The project's repository with this id (`id`) or name (`name`). */
export async function inProject(projectId: string, ref: { id: string } | { name: string }, conn: Db = db): Promise<RepositoryRow | undefined> {
  return conn('repositories').where({ project_id: projectId, ...ref }).first();
}

export async function byId(id: string, conn: Db = db): Promise<RepositoryRow | undefined> {
  return conn('repositories').where({ id }).first();
}

export async function insert(row: NewRepository): Promise<RepositoryRow> {
  const [r] = await db('repositories').insert(row).returning('*');
  return r as RepositoryRow;
}

/** Locks the row (in `tx`) and reads it, so a decision on where its token goes holds until commit. */
export async function byIdForUpdate(id: string, tx: Db): Promise<RepositoryRow | undefined> {
  return tx('repositories').where({ id }).forUpdate().first();
}

export async function update(id: string, changes: RepositoryChanges, conn: Db = db): Promise<RepositoryRow> {
  const [row] = await conn('repositories').where({ id }).update({ ...changes, updated_at: conn.fn.now() }).returning('*');
  return row as RepositoryRow;
}

export async function remove(id: string): Promise<void> {
  await db('repositories').where({ id }).del();
}

/** Another session of this repository already works on `branch` (branches are one per conversation). */
export async function branchTaken(repositoryId: string, branch: string, exceptSessionId: string): Promise<boolean> {
  return Boolean(await db('sessions').where({ repository_id: repositoryId, branch_name: branch }).whereNot({ id: exceptSessionId }).first('id'));
}
