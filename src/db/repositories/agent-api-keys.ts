/**
 * Agents' API keys (agent_api_keys). Only a hash of a key is stored, with its first characters
 * to recognise it by; revoking sets revoked_at.
 */
import { db, type Db } from '../knex.js';

export interface ApiKeyRow {
  id: string;
  agent_id: string;
  project_id: string;
  /** sha-256 of the key (lib/secrets.ts hashApiKey); the key itself is never stored. */
  key_hash: string;
  key_prefix: string;
  name: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export type NewApiKey = Pick<ApiKeyRow, 'agent_id' | 'project_id' | 'key_hash' | 'key_prefix' | 'name'>;

/** Who a key acts as: the key, its agent, project and the agent's member row. */
export interface KeyHolder {
  id: string;
  agent_id: string;
  project_id: string;
  /** Set in the transaction that creates the agent, so never null for a live one. */
  member_id: string;
}

export async function insert(key: NewApiKey): Promise<ApiKeyRow> {
  const [row] = await db('agent_api_keys').insert(key).returning('*');
  return row as ApiKeyRow;
}

/** The agent's keys, revoked ones too, oldest first. */
export async function ofAgent(agentId: string): Promise<ApiKeyRow[]> {
  return db('agent_api_keys').where({ agent_id: agentId }).orderBy('created_at');
}

/** Revokes the agent's key (a revoked one keeps its first revoked_at); undefined when it has no such key. */
export async function revoke(id: string, agentId: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db('agent_api_keys').where({ id, agent_id: agentId }).update({ revoked_at: db.raw('coalesce(revoked_at, now())') }).returning('*');
  return row;
}

export async function revokeAllOfAgent(agentId: string, conn: Db = db): Promise<void> {
  await conn('agent_api_keys').where({ agent_id: agentId }).whereNull('revoked_at').update({ revoked_at: conn.fn.now() });
}

/** An unrevoked key of a live agent, by the key's hash. */
export async function holderOfHash(keyHash: string): Promise<KeyHolder | undefined> {
  return db('agent_api_keys as k')
    .join('agents as a', 'a.id', 'k.agent_id')
    .where({ 'k.key_hash': keyHash })
    .whereNull('k.revoked_at')
    .whereNull('a.deleted_at')
    .first('k.id', 'k.agent_id', 'k.project_id', 'a.member_id');
}

export async function touchLastUsed(id: string): Promise<void> {
  await db('agent_api_keys').where({ id }).update({ last_used_at: db.fn.now() });
}
