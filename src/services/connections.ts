/** Pairing codes and connections between agents (seed 003). */
import crypto from 'node:crypto';
import { config } from '../config.js';
import { db } from '../db/knex.js';
import { badRequest, conflict, gone, notFound } from '../domain/errors.js';
import { isUuid } from './access.js';
import type { AgentRow } from './acting-agent.js';
import { emitToAgent } from './hub.js';
import { cancelTasksBetween } from './tasks.js';

// No 0/O/1/I: codes are read aloud and typed by people.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export async function createPairingCode(agent: AgentRow) {
  const bytes = crypto.randomBytes(8);
  const code = [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
  const expiresAt = new Date(Date.now() + config.pairingCodeTtlSeconds * 1000);
  await db('pairing_codes').insert({ code, agent_id: agent.id, expires_at: expiresAt });
  return { code, expiresAt: expiresAt.toISOString() };
}

export async function redeemPairingCode(agent: AgentRow, pairingCode: string, approval: 'auto' | 'require' = 'auto') {
  const code = pairingCode.trim().toUpperCase();
  const row = await db('pairing_codes').where({ code }).first();
  if (!row) throw badRequest('Unknown pairing code: ask the other agent for a new one');
  if (row.agent_id === agent.id) throw badRequest('An agent cannot redeem its own pairing code');
  const conn = await db.transaction(async (tx) => {
    // Single use: only the first redeemer flips redeemed_at.
    const claimed = await tx('pairing_codes').where({ code }).whereNull('redeemed_at').andWhere('expires_at', '>', tx.fn.now()).update({ redeemed_at: tx.fn.now() });
    if (!claimed) {
      throw row.redeemed_at ? conflict('This pairing code was already used') : gone('This pairing code has expired: ask for a new one');
    }
    const existing = await activeConnection(row.agent_id, agent.id, tx);
    if (existing) throw conflict('These agents are already connected');
    const [c] = await tx('agent_connections').insert({ agent_id: row.agent_id, with_agent_id: agent.id, approval }).returning('*');
    return c;
  });
  const creator = await db('agents').where({ id: row.agent_id }).first();
  await emitToAgent(creator.id, connectedEvent(conn.id, agent));
  await emitToAgent(agent.id, connectedEvent(conn.id, creator));
  return { id: conn.id, agentId: agent.id, withAgentId: creator.id, approval: conn.approval, createdAt: conn.created_at };
}

function connectedEvent(connectionId: string, other: AgentRow) {
  return {
    type: 'agent.connected' as const,
    connectionId,
    withAgentId: other.id,
    withAgentName: other.name,
    ...(other.public_key ? { withPublicKey: other.public_key } : {}),
  };
}

export async function activeConnection(a: string, b: string, conn = db) {
  return conn('agent_connections')
    .whereNull('deleted_at')
    .andWhere((w) => w.where({ agent_id: a, with_agent_id: b }).orWhere({ agent_id: b, with_agent_id: a }))
    .first();
}

export async function listConnections(agent: AgentRow) {
  const rows = await db('agent_connections as c')
    .whereNull('c.deleted_at')
    .andWhere((w) => w.where('c.agent_id', agent.id).orWhere('c.with_agent_id', agent.id))
    .orderBy('c.created_at', 'desc');
  const otherIds = rows.map((r) => (r.agent_id === agent.id ? r.with_agent_id : r.agent_id));
  const others = new Map((await db('agents').whereIn('id', otherIds).select('id', 'name')).map((a) => [a.id, a.name]));
  return rows.map((r) => {
    const other = r.agent_id === agent.id ? r.with_agent_id : r.agent_id;
    return { id: r.id, agentId: agent.id, withAgentId: other, withAgentName: others.get(other) ?? null, approval: r.approval, createdAt: r.created_at };
  });
}

export async function deleteConnection(agent: AgentRow, id: string) {
  const c = isUuid(id) ? await db('agent_connections').where({ id }).whereNull('deleted_at').first() : null;
  if (!c || (c.agent_id !== agent.id && c.with_agent_id !== agent.id)) throw notFound('Connection');
  await db('agent_connections').where({ id }).update({ deleted_at: db.fn.now() });
  const other = c.agent_id === agent.id ? c.with_agent_id : c.agent_id;
  const cancelled = await cancelTasksBetween(agent.id, other, agent.id);
  await emitToAgent(other, { type: 'agent.disconnected', connectionId: id, byAgentId: agent.id });
  return { id, deleted: true, cancelledTasks: cancelled };
}
