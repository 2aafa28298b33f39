/**
 * Pairing codes and the connections they make between two agents (seed 003). A connection is
 * symmetric: `agent_id` made the code, `with_agent_id` redeemed it; either may be asked about.
 */
import { db, type Db, type Tx } from '../knex.js';

export type Approval = 'auto' | 'require';

export interface PairingCodeRow {
  code: string;
  /** The agent that made the code. */
  agent_id: string;
  expires_at: Date;
  redeemed_at: Date | null;
  created_at: Date;
}

export interface ConnectionRow {
  id: string;
  agent_id: string;
  with_agent_id: string;
  /** Whether tasks over this connection wait for the target's approval. */
  approval: Approval;
  created_at: Date;
  deleted_at: Date | null;
}

export async function insertPairingCode(code: string, agentId: string, expiresAt: Date): Promise<void> {
  await db('pairing_codes').insert({ code, agent_id: agentId, expires_at: expiresAt });
}

export async function pairingCode(code: string): Promise<PairingCodeRow | undefined> {
  return db('pairing_codes').where({ code }).first();
}

/** Single use: only the first redeemer of an unexpired code flips redeemed_at. False otherwise. */
export async function claimPairingCode(tx: Tx, code: string): Promise<boolean> {
  const n = await tx('pairing_codes').where({ code }).whereNull('redeemed_at').andWhere('expires_at', '>', tx.fn.now()).update({ redeemed_at: tx.fn.now() });
  return n > 0;
}

/** The live connection between two agents, either way round. */
export async function activeBetween(a: string, b: string, conn: Db = db): Promise<ConnectionRow | undefined> {
  return conn('agent_connections')
    .whereNull('deleted_at')
    .andWhere((w) => w.where({ agent_id: a, with_agent_id: b }).orWhere({ agent_id: b, with_agent_id: a }))
    .first();
}

export async function insert(tx: Tx, row: { agent_id: string; with_agent_id: string; approval: Approval }): Promise<ConnectionRow> {
  const [c] = await tx('agent_connections').insert(row).returning('*');
  return c;
}

/** An agent's live connections, newest first. */
export async function activeOf(agentId: string): Promise<ConnectionRow[]> {
  return db('agent_connections as c')
    .whereNull('c.deleted_at')
    .andWhere((w) => w.where('c.agent_id', agentId).orWhere('c.with_agent_id', agentId))
    .orderBy('c.created_at', 'desc');
}

export async function activeById(id: string): Promise<ConnectionRow | undefined> {
  return db('agent_connections').where({ id }).whereNull('deleted_at').first();
}

export async function softDelete(id: string): Promise<void> {
  await db('agent_connections').where({ id }).update({ deleted_at: db.fn.now() });
}
