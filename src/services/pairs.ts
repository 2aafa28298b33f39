/**
 * Pair sessions (seed 000): a generator and a reviewer agent take turns on one task in one shared
 * workspace (a sandbox both work in). Turns are posted by clients, or, with `drive: true`, played
 * by the runtime itself.
 *
 * Turn rules: generate and review alternate, starting with generate; generate comes from the
 * generator, review from the reviewer; interrupt comes from anyone at any time and does not change
 * whose turn it is. An ended pair takes no more turns.
 *
 * Drive mode is a state machine kept in the pair row, advanced by the event pipeline's pair
 * listener (and by reads, as a safety net): each round is a session of the acting agent in the
 * workspace sandbox; when the round's session comes to rest, its last words become the turn and
 * the next round starts. Each step is a compare-and-set on the pair row, so concurrent or
 * repeated nudges do it once, and no lock is held across sessions or the worker.
 */
import crypto from 'node:crypto';
import { db, type Db, type Tx } from '../db/knex.js';
import { getSession, type EventRow, type SessionRow } from '../db/session-store.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { log } from '../log.js';
import { ports } from '../domain/ports.js';
import { isUuid, type Membership } from './access.js';
import { findAgent, type AgentRow } from './agents.js';
import { insertSandbox } from './sandboxes.js';
import { createSession, isTerminal, sendMessage, stopSession } from './sessions.js';

export type PairRow = Record<string, any>;
export type TurnRole = 'generate' | 'review' | 'interrupt';
const BUSY = ['queued', 'running', 'paused'];

export function turnView(t: Record<string, any>) {
  return { id: t.id, agentId: t.agent_id, role: t.role, content: t.content, sessionId: t.session_id ?? null, createdAt: t.created_at };
}

/** The seed's fields first (camelCase, as in seed 000), then what drive mode adds. */
export function pairView(p: PairRow, turns: Array<Record<string, any>>) {
  return {
    id: p.id,
    workspaceId: p.workspace_id,
    generatorId: p.generator_id,
    reviewerId: p.reviewer_id,
    task: p.task,
    status: p.status,
    turns: turns.map(turnView),
    qualityScore: p.quality_score ?? null,
    createdAt: p.created_at,
    projectId: p.project_id,
    drive: p.drive,
    maxTurns: p.max_turns,
    currentSessionId: p.current_session_id ?? null,
    endedAt: p.ended_at ?? null,
    endReason: p.end_reason ?? null,
  };
}

export async function turnsOf(pairIds: string[], conn: Db = db): Promise<Map<string, Array<Record<string, any>>>> {
  const out = new Map<string, Array<Record<string, any>>>(pairIds.map((id) => [id, []]));
  if (!pairIds.length) return out;
  for (const t of await conn('pair_turns').whereIn('pair_session_id', pairIds).orderBy('seq')) out.get(t.pair_session_id)!.push(t);
  return out;
}

export async function loadPairView(id: string) {
  const p = await db('pair_sessions').where({ id }).first();
  return pairView(p, (await turnsOf([id])).get(id)!);
}

export async function requirePair(projectIds: string[], id: string): Promise<PairRow> {
  const p = isUuid(id) ? await db('pair_sessions').where({ id }).whereIn('project_id', projectIds).first() : null;
  if (!p) throw notFound('Pair session');
  return p;
}

export interface CreatePairInput {
  generatorId: string;
  reviewerId: string;
  task: string;
  drive?: boolean;
  maxTurns?: number;
}

export async function createPair(m: Membership, input: CreatePairInput): Promise<PairRow> {
  const resolve = async (field: string, ref: string): Promise<AgentRow> => {
    const a = await findAgent(m.projectId, ref);
    if (!a) throw badRequest(`${field} "${ref}" is not an agent of this project`);
    return a;
  };
  const generator = await resolve('generatorId', input.generatorId);
  const reviewer = await resolve('reviewerId', input.reviewerId);
  if (generator.id === reviewer.id) throw badRequest('generatorId and reviewerId must be two different agents');
  if (input.drive) {
    for (const a of [generator, reviewer]) {
      if (a.kind !== 'hosted') throw badRequest(`drive needs two hosted agents; "${a.handle}" is ${a.kind} (post its turns yourself instead)`);
    }
  }
  const pair = await db.transaction(async (tx) => {
    // The workspace: one sandbox, made with the generator's settings; its container starts with
    // the first session that works in it. It outlives the pair (the work is in it): delete it
    // with DELETE /api/v1/sandboxes/:workspaceId.
    const id = crypto.randomUUID();
    const sb = await insertSandbox(tx, m.projectId, generator, { metadata: { purpose: 'pair workspace', pair_session_id: id } });
    const [row] = await tx('pair_sessions')
      .insert({
        id, project_id: m.projectId, workspace_id: sb.id, generator_id: generator.id, reviewer_id: reviewer.id, task: input.task,
        drive: input.drive ?? false, max_turns: input.maxTurns ?? 6, created_by_member_id: m.memberId,
      })
      .returning('*');
    return row;
  });
  if (pair.drive) await advance(pair.id);
  return pair;
}

async function lockActive(tx: Tx, pairId: string): Promise<PairRow> {
  const p = await tx('pair_sessions').where({ id: pairId }).forUpdate().first();
  if (p.status !== 'active') throw conflict(`This pair session is ${p.status}: it takes no more turns`);
  return p;
}

/** Posts a turn by hand (rules in the header). In drive mode only interrupts: the runtime plays the rest. */
export async function postTurn(pair: PairRow, input: { agentId: string; role: TurnRole; content: string }): Promise<Record<string, any>> {
  let forward: string | null = null;
  const turn = await db.transaction(async (tx) => {
    const p = await lockActive(tx, pair.id);
    const [gen, rev] = await Promise.all([tx('agents').where({ id: p.generator_id }).first(), tx('agents').where({ id: p.reviewer_id }).first()]);
    const is = (a: AgentRow) => input.agentId === a.id || input.agentId === a.handle;
    let agentId = is(gen) ? gen.id : is(rev) ? rev.id : input.agentId;
    if (input.role === 'interrupt') {
      if (p.drive && p.current_session_id) forward = `Interrupt from ${input.agentId}: ${input.content}`;
    } else {
      if (p.drive) throw conflict('The runtime plays the generate and review turns of a driven pair session; post an interrupt turn to step in');
      const last = await tx('pair_turns').where({ pair_session_id: p.id }).whereNot({ role: 'interrupt' }).orderBy('seq', 'desc').first('role');
      const expected = last?.role === 'generate' ? 'review' : 'generate';
      if (input.role !== expected) {
        throw conflict(`Out of turn: expected a ${expected} turn from the ${expected === 'generate' ? 'generator' : 'reviewer'} next (generate and review alternate, starting with generate)`);
      }
      const owner = expected === 'generate' ? gen : rev;
      if (!is(owner)) {
        throw conflict(`${expected} turns come from the ${expected === 'generate' ? 'generator' : 'reviewer'} ("${owner.handle}", ${owner.id}), not "${input.agentId}"`);
      }
      agentId = owner.id;
    }
    const [row] = await tx('pair_turns').insert({ pair_session_id: p.id, agent_id: agentId, role: input.role, content: input.content }).returning('*');
    await tx('pair_sessions').where({ id: p.id }).update({ updated_at: tx.fn.now() });
    return row;
  });
  // Someone stepping into a driven pair: the agent at work hears it at its next turn boundary.
  if (forward) {
    const s = await getSession((await db('pair_sessions').where({ id: pair.id }).first()).current_session_id);
    if (s && !isTerminal(s.status)) await sendMessage(s, forward).catch((err) => log.warn({ err, pair: pair.id }, 'interrupt not delivered'));
  }
  return turn;
}

export async function endPair(pair: PairRow, outcome: 'completed' | 'abandoned', qualityScore: number | null | undefined): Promise<void> {
  await db.transaction(async (tx) => {
    await lockActive(tx, pair.id);
    await finish(tx, pair.id, outcome, qualityScore ?? null, 'ended by request');
  });
  await stopRounds(pair.id);
}

async function finish(tx: Tx, pairId: string, status: 'completed' | 'abandoned', score: number | null, reason: string) {
  await tx('pair_sessions').where({ id: pairId }).update({ status, quality_score: score, end_reason: reason, ended_at: tx.fn.now(), updated_at: tx.fn.now() });
}

/** An ended pair leaves no agent working: its sessions are stopped (the workspace stays). */
async function stopRounds(pairId: string): Promise<void> {
  const p = await db('pair_sessions').where({ id: pairId }).first();
  for (const id of new Set([p.current_session_id, p.generator_session_id, p.reviewer_session_id].filter(Boolean))) {
    const s = await getSession(id);
    if (s && !isTerminal(s.status)) await stopSession(s, 'pair session ended').catch(() => {});
  }
}

// ---- drive mode ---------------------------------------------------------------------------

/**
 * The reviewer approves by calling finish with a summary containing APPROVED and, optionally, a
 * score: "APPROVED score=0.85 ...". Anything else is feedback for the generator's next round.
 */
export function parseApproval(summary: string | null): { approved: boolean; score: number | null } {
  if (!summary || !/\bAPPROVED\b/.test(summary) || /\bNOT\s+APPROVED\b/i.test(summary)) return { approved: false, score: null };
  const m = /\bscore\s*[=:]\s*(\d*\.?\d+)/i.exec(summary);
  const score = m ? Math.min(1, Math.max(0, Number(m[1]))) : null;
  return { approved: true, score: Number.isFinite(score) ? score : null };
}

/** What the round's session said after its message: its last text and its finish summary, if any. */
async function lastWords(sessionId: string, fromIndex: number): Promise<{ text: string | null; summary: string | null }> {
  const events: EventRow[] = await db('session_events').where({ session_id: sessionId }).andWhere('event_index', '>=', fromIndex).orderBy('event_index');
  let text: string | null = null;
  let summary: string | null = null;
  for (const e of events) {
    const p = e.payload as Record<string, any>;
    if (e.event_type === 'message' && e.event_source === 'agent' && typeof p.message === 'string' && p.message.trim()) text = p.message.trim();
    if (e.event_type === 'tool_use' && p.name === 'finish') summary = String(p.input?.summary ?? '').trim() || null;
  }
  return { text, summary };
}

/** A short picture of the workspace for the reviewer (best effort: the reviewer can look itself). */
async function workspaceListing(workspaceId: string): Promise<string> {
  try {
    // Run by the worker that owns the workspace's container; it refuses a frozen or missing one.
    const r = await ports().commands.exec(workspaceId, 'cd /workspace && { git status --short 2>/dev/null | head -50; ls -la | head -100; }', 5000);
    return r.output.trim().slice(0, 8000) || '(empty)';
  } catch (err) {
    return `(could not list it: ${(err as Error).message}; look at /workspace yourself)`;
  }
}

const generatorBrief = (p: PairRow, reviewer: AgentRow) =>
  `Pair session task: ${p.task}\n\nYou are the generator; ${reviewer.handle} will review your work. Work in /workspace, which the ` +
  'reviewer shares. When you are done, end your turn with a short summary of what you changed (do not call finish).';
const generatorFeedback = (p: PairRow, reviewer: AgentRow, feedback: string) =>
  `The reviewer (${reviewer.handle}) asks for changes:\n\n${feedback}\n\nTask: ${p.task}\n\nContinue in /workspace and end your turn ` +
  'with a short summary of what you changed (do not call finish).';
const reviewerBrief = (p: PairRow, generator: AgentRow, said: string, listing: string) =>
  `Review the work on this pair session task: ${p.task}\n\nThe generator (${generator.handle}) says:\n${said}\n\n` +
  `The shared workspace /workspace now contains:\n${listing}\n\nInspect the files in /workspace. If the work is acceptable, call ` +
  'finish with a summary containing APPROVED and a quality score between 0 and 1, e.g. "APPROVED score=0.9 <why>". Otherwise end ' +
  'your turn with concrete feedback for the generator (do not call finish).';

/** Starts a round's session: wakes the agent's previous one if it is idle (it keeps its context), else a new one in the workspace. */
async function startRoundSession(p: PairRow, role: 'generate' | 'review', message: string): Promise<{ session: SessionRow; fromIndex: number }> {
  const prevId = role === 'generate' ? p.generator_session_id : p.reviewer_session_id;
  const prev = prevId ? await getSession(prevId) : undefined;
  if (prev?.status === 'idle') {
    const sent = await sendMessage(prev, message);
    return { session: sent.session, fromIndex: sent.event.event_index };
  }
  const workspace = await db('sandboxes').where({ id: p.workspace_id }).first();
  // createSession needs a membership only for the project and the creating member.
  const m: Membership = { projectId: p.project_id, memberId: p.created_by_member_id, role: 'member', principal: { kind: 'user', userId: 'pair-driver' } as Principal };
  const session = await createSession(m, {
    agentRef: role === 'generate' ? p.generator_id : p.reviewer_id, message, triggerType: 'pair', sandbox: workspace,
    metadata: { pair_session_id: p.id, pair_role: role },
  });
  return { session, fromIndex: 0 };
}

/** Ends an active pair (once: compare-and-set on its status) and stops its sessions. */
async function endDriven(pairId: string, status: 'completed' | 'abandoned', score: number | null, reason: string): Promise<boolean> {
  const n = await db('pair_sessions').where({ id: pairId, status: 'active' })
    .update({ status, quality_score: score, end_reason: reason, ended_at: db.fn.now(), updated_at: db.fn.now() });
  if (n) await stopRounds(pairId);
  return true;
}

/** A claim on starting the next round older than this is taken over (its process died). */
const ROUND_CLAIM_STALE_MS = 60_000;

/**
 * Starts the round `current_role` names (generate when none yet). One process does it: it claims
 * the start with a token (compare-and-set), does the slow work with no lock held (listing the
 * workspace through the worker, creating or waking a session), then records the round under the
 * same token. A process that dies mid-start leaves a claim that goes stale and is taken over.
 */
async function startNextRound(pairId: string): Promise<boolean> {
  const token = crypto.randomUUID();
  const [p] = await db('pair_sessions').where({ id: pairId, status: 'active', drive: true }).whereNull('current_session_id')
    .andWhere((w) => w.whereNull('round_claim').orWhere('round_claimed_at', '<', new Date(Date.now() - ROUND_CLAIM_STALE_MS)))
    .update({ round_claim: token, round_claimed_at: db.fn.now() })
    .returning('*');
  if (!p) return false;
  const role = (p.current_role ?? 'generate') as 'generate' | 'review';
  try {
    const [gen, rev] = await Promise.all([db('agents').where({ id: p.generator_id }).first(), db('agents').where({ id: p.reviewer_id }).first()]);
    const last = await db('pair_turns').where({ pair_session_id: p.id }).whereNot({ role: 'interrupt' }).orderBy('seq', 'desc').first();
    const message = role === 'review'
      ? reviewerBrief(p, gen, last?.content ?? '(no summary)', await workspaceListing(p.workspace_id))
      : last?.role === 'review' ? generatorFeedback(p, rev, last.content) : generatorBrief(p, rev);
    const { session, fromIndex } = await startRoundSession(p, role, message);
    await db('pair_sessions').where({ id: p.id, round_claim: token }).update({
      current_session_id: session.id, current_role: role, current_from_index: fromIndex, round_claim: null, round_claimed_at: null,
      [role === 'generate' ? 'generator_session_id' : 'reviewer_session_id']: session.id, updated_at: db.fn.now(),
    });
  } catch (err) {
    // e.g. an agent deleted mid-pair: end it rather than leave it active with no one working.
    log.warn({ err, pair: p.id }, 'pair round could not start');
    return endDriven(p.id, 'abandoned', null, `could not start the next round: ${(err as Error).message}`);
  }
  // The round's session may have come to rest before it was recorded as current: look again.
  return advance(pairId);
}

/**
 * Moves a driven pair on if its current round is over; a no-op otherwise, so it is safe to call
 * from every listener and every read. Returns true when the pair ended. The round's end is
 * recorded once (compare-and-set on the current round, with its turn, in one short
 * transaction); no lock is held while sessions are created or the workspace is listed.
 */
export async function advance(pairId: string): Promise<boolean> {
  const p = await db('pair_sessions').where({ id: pairId }).first();
  if (!p || p.status !== 'active' || !p.drive) return false;
  if (!p.current_session_id) return startNextRound(pairId);
  const s = await getSession(p.current_session_id);
  if (!s) return endDriven(p.id, 'abandoned', null, 'the current round\'s session is gone');
  if (BUSY.includes(s.status)) return false;
  const role = p.current_role as 'generate' | 'review';
  const agentId = role === 'generate' ? p.generator_id : p.reviewer_id;
  const { text, summary } = await lastWords(s.id, p.current_from_index ?? 0);
  const said = role === 'review' ? summary ?? text : text ?? summary;
  const failed = s.status === 'failed' || s.status === 'stopped';
  const content = said ?? (failed ? `(the session ${s.status}${s.error ? `: ${s.error}` : ''})` : `(the ${role === 'generate' ? 'generator' : 'reviewer'} ended its turn without a message)`);
  const turns = await db.transaction(async (tx) => {
    const n = await tx('pair_sessions')
      .where({ id: p.id, status: 'active', current_session_id: s.id, current_from_index: p.current_from_index })
      .update({ current_session_id: null, current_role: role === 'generate' ? 'review' : 'generate', updated_at: tx.fn.now() });
    if (!n) return null; // someone else recorded this round
    await tx('pair_turns').insert({ pair_session_id: p.id, agent_id: agentId, role, content, session_id: s.id });
    const [{ n: count }] = await tx('pair_turns').where({ pair_session_id: p.id }).whereIn('role', ['generate', 'review']).count<{ n: string }[]>('* as n');
    return Number(count);
  });
  if (turns === null) return false;
  if (failed) return endDriven(p.id, 'abandoned', null, `the ${role === 'generate' ? 'generator' : 'reviewer'}'s session ${s.status}${s.error ? `: ${s.error}` : ''}`);
  if (role === 'review') {
    const verdict = parseApproval(s.status === 'completed' ? summary : null);
    if (verdict.approved) return endDriven(p.id, 'completed', verdict.score, 'approved by the reviewer');
  }
  if (turns >= p.max_turns) return endDriven(p.id, 'abandoned', null, `maxTurns (${p.max_turns}) reached without approval`);
  return startNextRound(p.id);
}

/** Safety net for a hook lost with its process: reading a driven pair advances it if its round is over. */
export async function nudge(p: PairRow): Promise<void> {
  if (p.status !== 'active' || !p.drive) return;
  const s = p.current_session_id ? await getSession(p.current_session_id) : undefined;
  if (!s || !BUSY.includes(s.status)) await advance(p.id);
}

const REST = ['idle', 'completed', 'failed', 'stopped'];

/** Pipeline listener: a round's session came to rest, so the pair may move on. */
export async function onPairRoundEvents(session: SessionRow, events: EventRow[]): Promise<void> {
  const pairId = session.trigger_type === 'pair' ? (session.metadata as Record<string, unknown> | null)?.pair_session_id : undefined;
  if (typeof pairId !== 'string') return;
  const rested = events.some((e) => e.event_type === 'status' && REST.includes(String(e.payload.status)) && e.payload.reason !== 'created');
  if (rested) await advance(pairId);
}
