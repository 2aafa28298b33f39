/** Pairing codes and connections between agents (seed 003). */
import crypto from 'node:crypto';
import { config } from '../config.js';
import { db } from '../db/knex.js';
import type { AgentRow } from '../db/repositories/agents.js';
import * as agents from '../db/repositories/agents.js';
import * as connections from '../db/repositories/connections.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { isUuid } from './access.js';
import { emitToAgent } from './hub.js';
import { cancelTasksBetween } from './tasks.js';

// No 0/O/1/I: codes are read aloud and typed by people.
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** The acting agent: its id, and what the other side hears about it when they connect. */
type Party = Pick<AgentRow, 'id' | 'name'> & { public_key?: string | null };

export async function createPairingCode(agent: Party) {
  const bytes = crypto.randomBytes(8);
  const code = [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
  const expiresAt = new Date(Date.now() + config.pairingCodeTtlSeconds * 1000);
  await connections.insertPairingCode(code, agent.id, expiresAt);
  return { code, expiresAt: expiresAt.toISOString() };
}

/**
 * One answer for every code that cannot be redeemed (unknown, already used, expired, or the
 * redeemer's own): 400 with the same text, so trying codes tells a guesser nothing about which
 * exist. Guessing itself is rate limited (POST /api/v1/connections, http/rate-limit.ts).
 */
const unusableCode = () => badRequest('This pairing code cannot be used (it is unknown, used or expired): ask the other agent for a new one');

export async function redeemPairingCode(agent: Party, pairingCode: string, approval: connections.Approval = 'auto') {
  const code = pairingCode.trim().toUpperCase();
  const row = await connections.pairingCode(code);
  if (!row || row.agent_id === agent.id) throw unusableCode();
  const conn = await db.transaction(async (tx) => {
    // Single use: only the first redeemer flips redeemed_at.
    const claimed = await connections.claimPairingCode(tx, code);
    if (!claimed) throw unusableCode();
    const existing = await connections.activeBetween(row.agent_id, agent.id, tx);
    if (existing) throw conflict('These agents are already connected');
    return connections.insert(tx, { agent_id: row.agent_id, with_agent_id: agent.id, approval });
  });
  const creator = (await agents.byId(row.agent_id))!;
  await emitToAgent(creator.id, connectedEvent(conn.id, agent));
  await emitToAgent(agent.id, connectedEvent(conn.id, creator));
  return { id: conn.id, agentId: agent.id, withAgentId: creator.id, approval: conn.approval, createdAt: conn.created_at };
}

function connectedEvent(connectionId: string, other: Party) {
  return {
    type: 'agent.connected' as const,
    connectionId,
    withAgentId: other.id,
    withAgentName: other.name,
    ...(other.public_key ? { withPublicKey: other.public_key } : {}),
  };
}

export async function listConnections(agent: Party) {
  const rows = await connections.activeOf(agent.id);
  const otherIds = rows.map((r) => (r.agent_id === agent.id ? r.with_agent_id : r.agent_id));
  const others = await agents.namesOf(otherIds);
  return rows.map((r) => {
    const other = r.agent_id === agent.id ? r.with_agent_id : r.agent_id;
    return { id: r.id, agentId: agent.id, withAgentId: other, withAgentName: others.get(other) ?? null, approval: r.approval, createdAt: r.created_at };
  });
}

export async function deleteConnection(agent: Party, id: string) {
  const c = isUuid(id) ? await connections.activeById(id) : null;
  if (!c || (c.agent_id !== agent.id && c.with_agent_id !== agent.id)) throw notFound('Connection');
  await connections.softDelete(id);
  const other = c.agent_id === agent.id ? c.with_agent_id : c.agent_id;
  const cancelled = await cancelTasksBetween(agent.id, other, agent.id);
  await emitToAgent(other, { type: 'agent.disconnected', connectionId: id, byAgentId: agent.id });
  return { id, deleted: true, cancelledTasks: cancelled };
}
