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
import { db, type Tx } from '../db/knex.js';
import * as agents from '../db/repositories/agents.js';
import * as pairs from '../db/repositories/pairs.js';
import type { PairRow, PairStatus, PairTurnRow, RoundRole, TurnRole } from '../db/repositories/pairs.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import * as sessionEvents from '../db/repositories/session-events.js';
import { getSession, type EventRow, type SessionRow } from '../db/session-store.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { log } from '../log.js';
import { ports } from '../domain/ports.js';
import { isUuid, type Membership } from './access.js';
import { findAgent, type AgentRow } from './agents.js';
import { insertSandbox } from './sandboxes.js';
import { checkTurn, parseApproval } from './pair-rules.js';
import { createSession, isTerminal, sendMessage, stopSession } from './sessions.js';

export type { PairRow, TurnRole };
export { parseApproval } from './pair-rules.js';
const BUSY = ['queued', 'running', 'paused'];

export function turnView(t: PairTurnRow) {
  return { id: t.id, agentId: t.agent_id, role: t.role, content: t.content, sessionId: t.session_id ?? null, createdAt: t.created_at };
}

/** The seed's fields first (camelCase, as in seed 000), then what drive mode adds. */
export function pairView(p: PairRow, turns: PairTurnRow[]) {
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

export async function loadPairView(id: string) {
  const p = (await pairs.byId(id))!;
  return pairView(p, (await pairs.turnsOf([id])).get(id)!);
}

/** Pairs in these projects, newest first, with their turns. */
/** `participant`: only pairs that agent plays in (what an agent key may see). */
export async function listPairs(projectIds: string[], q: { status?: PairStatus; participant?: string; limit: number; offset: number }) {
  const { rows, total } = await pairs.list(projectIds, q);
  const turns = await pairs.turnsOf(rows.map((r) => r.id));
  return { pairSessions: rows.map((r) => pairView(r, turns.get(r.id)!)), total };
}

export async function requirePair(projectIds: string[], id: string): Promise<PairRow> {
  const p = isUuid(id) ? await pairs.inProjects(projectIds, id) : null;
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
    return pairs.insert(tx, {
      id, project_id: m.projectId, workspace_id: sb.id, generator_id: generator.id, reviewer_id: reviewer.id, task: input.task,
      drive: input.drive ?? false, max_turns: input.maxTurns ?? 6, created_by_member_id: m.memberId,
    });
  });
  if (pair.drive) await advance(pair.id);
  return pair;
}

async function lockActive(tx: Tx, pairId: string): Promise<PairRow> {
  const p = await pairs.lock(tx, pairId);
  if (p.status !== 'active') throw conflict(`This pair session is ${p.status}: it takes no more turns`);
  return p;
}

/** Posts a turn by hand (rules in the header). In drive mode only interrupts: the runtime plays the rest. */
export async function postTurn(pair: PairRow, input: { agentId: string; role: TurnRole; content: string }): Promise<PairTurnRow> {
  let forward: string | null = null;
  const turn = await db.transaction(async (tx) => {
    const p = await lockActive(tx, pair.id);
    const [gen, rev] = (await Promise.all([agents.byId(p.generator_id, tx), agents.byId(p.reviewer_id, tx)])) as agents.AgentRow[];
    const last = input.role === 'interrupt' || p.drive ? undefined : await pairs.lastPlayedTurn(p.id, tx);
    const agentId = checkTurn(input, { drive: p.drive, generator: gen, reviewer: rev, lastRole: last?.role });
    if (input.role === 'interrupt' && p.drive && p.current_session_id) forward = `Interrupt from ${input.agentId}: ${input.content}`;
    return pairs.insertTurn(tx, { pair_session_id: p.id, agent_id: agentId, role: input.role, content: input.content });
  });
  // Someone stepping into a driven pair: the agent at work hears it at its next turn boundary.
  if (forward) {
    const current = (await pairs.byId(pair.id))!.current_session_id;
    const s = current ? await getSession(current) : undefined;
    if (s && !isTerminal(s.status)) await sendMessage(s, forward).catch((err) => log.warn({ err, pair: pair.id }, 'interrupt not delivered'));
  }
  return turn;
}

export async function endPair(pair: PairRow, outcome: 'completed' | 'abandoned', qualityScore: number | null | undefined): Promise<void> {
  await db.transaction(async (tx) => {
    await lockActive(tx, pair.id);
    await pairs.finish(tx, pair.id, outcome, qualityScore ?? null, 'ended by request');
  });
  await stopRounds(pair.id);
}

/** An ended pair leaves no agent working: its sessions are stopped (the workspace stays). */
async function stopRounds(pairId: string): Promise<void> {
  const p = (await pairs.byId(pairId))!;
  for (const id of new Set([p.current_session_id, p.generator_session_id, p.reviewer_session_id].filter((x): x is string => Boolean(x)))) {
    const s = await getSession(id);
    if (s && !isTerminal(s.status)) await stopSession(s, 'pair session ended').catch(() => {});
  }
}

// ---- drive mode ---------------------------------------------------------------------------

/** What the round's session said after its message: its last text and its finish summary, if any. */
async function lastWords(sessionId: string, fromIndex: number): Promise<{ text: string | null; summary: string | null }> {
  const events = await sessionEvents.from(sessionId, fromIndex);
  let text: string | null = null;
  let summary: string | null = null;
  for (const e of events) {
    const p = e.payload as { message?: unknown; name?: unknown; input?: { summary?: unknown } };
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

type Named = Pick<agents.AgentRow, 'handle'>;
const generatorBrief = (p: PairRow, reviewer: Named) =>
  `Pair session task: ${p.task}\n\nYou are the generator; ${reviewer.handle} will review your work. Work in /workspace, which the ` +
  'reviewer shares. When you are done, end your turn with a short summary of what you changed (do not call finish).';
const generatorFeedback = (p: PairRow, reviewer: Named, feedback: string) =>
  `The reviewer (${reviewer.handle}) asks for changes:\n\n${feedback}\n\nTask: ${p.task}\n\nContinue in /workspace and end your turn ` +
  'with a short summary of what you changed (do not call finish).';
const reviewerBrief = (p: PairRow, generator: Named, said: string, listing: string) =>
  `Review the work on this pair session task: ${p.task}\n\nThe generator (${generator.handle}) says:\n${said}\n\n` +
  `The shared workspace /workspace now contains:\n${listing}\n\nInspect the files in /workspace. If the work is acceptable, call ` +
  'finish with a summary containing APPROVED and a quality score between 0 and 1, e.g. "APPROVED score=0.9 <why>". Otherwise end ' +
  'your turn with concrete feedback for the generator (do not call finish).';

/** Starts a round's session: wakes the agent's previous one if it is idle (it keeps its context), else a new one in the workspace. */
async function startRoundSession(p: PairRow, role: RoundRole, message: string): Promise<{ session: SessionRow; fromIndex: number }> {
  const prevId = role === 'generate' ? p.generator_session_id : p.reviewer_session_id;
  const prev = prevId ? await getSession(prevId) : undefined;
  if (prev?.status === 'idle') {
    const sent = await sendMessage(prev, message);
    return { session: sent.session, fromIndex: sent.event.event_index };
  }
  const workspace = await sandboxes.byId(p.workspace_id);
  // createSession needs a membership only for the project and the creating member.
  const m: Membership = { projectId: p.project_id, memberId: p.created_by_member_id!, role: 'member', principal: { kind: 'user', userId: 'pair-driver' } as Principal };
  const session = await createSession(m, {
    agentRef: role === 'generate' ? p.generator_id : p.reviewer_id, message, triggerType: 'pair', sandbox: workspace,
    metadata: { pair_session_id: p.id, pair_role: role },
  });
  return { session, fromIndex: 0 };
}

/** Ends an active pair (once: compare-and-set on its status) and stops its sessions. */
async function endDriven(pairId: string, status: 'completed' | 'abandoned', score: number | null, reason: string): Promise<boolean> {
  if (await pairs.endIfActive(pairId, status, score, reason)) await stopRounds(pairId);
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
  const p = await pairs.claimRound(pairId, token, new Date(Date.now() - ROUND_CLAIM_STALE_MS));
  if (!p) return false;
  const role: RoundRole = p.current_role ?? 'generate';
  try {
    const [gen, rev] = (await Promise.all([agents.byId(p.generator_id), agents.byId(p.reviewer_id)])) as agents.AgentRow[];
    const last = await pairs.lastPlayedTurn(p.id);
    const message = role === 'review'
      ? reviewerBrief(p, gen, last?.content ?? '(no summary)', await workspaceListing(p.workspace_id))
      : last?.role === 'review' ? generatorFeedback(p, rev, last.content) : generatorBrief(p, rev);
    const { session, fromIndex } = await startRoundSession(p, role, message);
    await pairs.recordRoundStart(p.id, token, { sessionId: session.id, role, fromIndex });
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
  const p = await pairs.byId(pairId);
  if (!p || p.status !== 'active' || !p.drive) return false;
  if (!p.current_session_id) return startNextRound(pairId);
  const s = await getSession(p.current_session_id);
  if (!s) return endDriven(p.id, 'abandoned', null, 'the current round\'s session is gone');
  if (BUSY.includes(s.status)) return false;
  const role = p.current_role!;
  const agentId = role === 'generate' ? p.generator_id : p.reviewer_id;
  const { text, summary } = await lastWords(s.id, p.current_from_index ?? 0);
  const said = role === 'review' ? summary ?? text : text ?? summary;
  const failed = s.status === 'failed' || s.status === 'stopped';
  const content = said ?? (failed ? `(the session ${s.status}${s.error ? `: ${s.error}` : ''})` : `(the ${role === 'generate' ? 'generator' : 'reviewer'} ended its turn without a message)`);
  const turns = await pairs.closeRound(p, { sessionId: s.id, role, agentId, content, next: role === 'generate' ? 'review' : 'generate' });
  if (turns === null) return false; // someone else recorded this round
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
