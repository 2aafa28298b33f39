/**
 * Pair sessions (seed 000): a generator and a reviewer agent take turns on one task in one shared
 * workspace (a sandbox both work in). Turns are posted by clients, or, with `drive: true`, played
 * by the runtime itself.
 *
 * Turn rules: generate and review alternate, starting with generate; generate comes from the
 * generator, review from the reviewer; interrupt comes from anyone at any time and does not change
 * whose turn it is. An ended pair takes no more turns.
 *
 * Drive mode is a state machine kept in the pair row, advanced by session hooks (and by reads, as
 * a safety net): each round is a session of the acting agent in the workspace sandbox; when the
 * round's session comes to rest, its last words become the turn and the next round starts. All
 * advancing happens under the pair row's lock, so concurrent or repeated nudges do it once.
 */
import crypto from 'node:crypto';
import { db, type Db, type Tx } from '../db/knex.js';
import { getSession, type EventRow, type SessionRow } from '../db/session-store.js';
import type { Principal } from '../http/auth.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { log } from '../log.js';
import { sandboxDriver } from '../runtime/sandbox/index.js';
import { isUuid, type Membership } from './access.js';
import { findAgent, type AgentRow } from './agents.js';
import { insertSandbox } from './sandboxes.js';
import { checkTurn, parseApproval, type TurnRole } from './pair-rules.js';
import { onSessionEvents } from './session-hooks.js';
import { createSession, isTerminal, sendMessage, stopSession } from './sessions.js';

export { parseApproval, type TurnRole } from './pair-rules.js';

export type PairRow = Record<string, any>;
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
    const last = input.role === 'interrupt' || p.drive ? undefined
      : await tx('pair_turns').where({ pair_session_id: p.id }).whereNot({ role: 'interrupt' }).orderBy('seq', 'desc').first('role');
    const agentId = checkTurn(input, { drive: p.drive, generator: gen, reviewer: rev, lastRole: last?.role });
    if (input.role === 'interrupt' && p.drive && p.current_session_id) forward = `Interrupt from ${input.agentId}: ${input.content}`;
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
  const sb = await db('sandboxes').where({ id: workspaceId }).first('container_id', 'state');
  if (!sb?.container_id) return '(no container yet)';
  // Never exec into a frozen container: Docker 20.10 wedges it (see sessions.ts pauseSession).
  if (sb.state !== 'active') return `(the workspace is ${sb.state}; look at /workspace yourself)`;
  try {
    const r = await sandboxDriver().exec(sb.container_id, {
      command: 'cd /workspace && { git status --short 2>/dev/null | head -50; ls -la | head -100; }', timeoutMs: 5000,
    });
    return (r.stdout + r.stderr).trim().slice(0, 8000) || '(empty)';
  } catch (err) {
    return `(could not list it: ${(err as Error).message})`;
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

/** Starts a round: wakes the agent's previous session if it is idle (it keeps its context), else a new one in the workspace. */
async function startRound(tx: Tx, p: PairRow, role: 'generate' | 'review', message: string): Promise<void> {
  const prevId = role === 'generate' ? p.generator_session_id : p.reviewer_session_id;
  const prev = prevId ? await getSession(prevId) : undefined;
  let session: SessionRow;
  let fromIndex = 0;
  if (prev?.status === 'idle') {
    const sent = await sendMessage(prev, message);
    session = sent.session;
    fromIndex = sent.event.event_index;
  } else {
    const workspace = await db('sandboxes').where({ id: p.workspace_id }).first();
    // createSession needs a membership only for the project and the creating member.
    const m: Membership = { projectId: p.project_id, memberId: p.created_by_member_id, role: 'member', principal: { kind: 'user', userId: 'pair-driver' } as Principal };
    session = await createSession(m, {
      agentRef: role === 'generate' ? p.generator_id : p.reviewer_id, message, triggerType: 'pair', sandbox: workspace,
      metadata: { pair_session_id: p.id, pair_role: role },
    });
  }
  await tx('pair_sessions').where({ id: p.id }).update({
    current_session_id: session.id, current_role: role, current_from_index: fromIndex,
    [role === 'generate' ? 'generator_session_id' : 'reviewer_session_id']: session.id, updated_at: tx.fn.now(),
  });
}

/**
 * Moves a driven pair on if its current round is over; a no-op otherwise, so it is safe to call
 * from every hook and every read. Returns true when the pair ended.
 */
export async function advance(pairId: string): Promise<boolean> {
  const ended = await db.transaction(async (tx) => {
    const p = await tx('pair_sessions').where({ id: pairId }).forUpdate().first();
    if (!p || p.status !== 'active' || !p.drive) return false;
    const [gen, rev] = await Promise.all([tx('agents').where({ id: p.generator_id }).first(), tx('agents').where({ id: p.reviewer_id }).first()]);
    const abandon = async (reason: string) => {
      await finish(tx, p.id, 'abandoned', null, reason);
      return true;
    };
    try {
      if (!p.current_session_id) {
        await startRound(tx, p, 'generate', generatorBrief(p, rev));
        return false;
      }
      const s = await getSession(p.current_session_id);
      if (!s) return abandon('the current round\'s session is gone');
      if (BUSY.includes(s.status)) return false;
      const role = p.current_role as 'generate' | 'review';
      const { text, summary } = await lastWords(s.id, p.current_from_index ?? 0);
      const said = role === 'review' ? summary ?? text : text ?? summary;
      const failed = s.status === 'failed' || s.status === 'stopped';
      const content = said ?? (failed ? `(the session ${s.status}${s.error ? `: ${s.error}` : ''})` : `(the ${role === 'generate' ? 'generator' : 'reviewer'} ended its turn without a message)`);
      await tx('pair_turns').insert({ pair_session_id: p.id, agent_id: role === 'generate' ? gen.id : rev.id, role, content, session_id: s.id });
      if (failed) return abandon(`the ${role === 'generate' ? 'generator' : 'reviewer'}'s session ${s.status}${s.error ? `: ${s.error}` : ''}`);
      if (role === 'review') {
        const verdict = parseApproval(s.status === 'completed' ? summary : null);
        if (verdict.approved) {
          await finish(tx, p.id, 'completed', verdict.score, 'approved by the reviewer');
          return true;
        }
      }
      const [{ n }] = await tx('pair_turns').where({ pair_session_id: p.id }).whereIn('role', ['generate', 'review']).count<{ n: string }[]>('* as n');
      if (Number(n) >= p.max_turns) return abandon(`maxTurns (${p.max_turns}) reached without approval`);
      if (role === 'generate') await startRound(tx, p, 'review', reviewerBrief(p, gen, content, await workspaceListing(p.workspace_id)));
      else await startRound(tx, p, 'generate', generatorFeedback(p, rev, content));
      return false;
    } catch (err) {
      // e.g. an agent deleted mid-pair: end it rather than leave it active with no one working.
      log.warn({ err, pair: p.id }, 'pair round could not start');
      return abandon(`could not start the next round: ${(err as Error).message}`);
    }
  });
  if (ended) await stopRounds(pairId);
  return ended;
}

/** Safety net for a hook lost with its process: reading a driven pair advances it if its round is over. */
export async function nudge(p: PairRow): Promise<void> {
  if (p.status !== 'active' || !p.drive) return;
  const s = p.current_session_id ? await getSession(p.current_session_id) : undefined;
  if (!s || !BUSY.includes(s.status)) await advance(p.id);
}

const REST = ['idle', 'completed', 'failed', 'stopped'];
onSessionEvents(async (session, events) => {
  const pairId = session.trigger_type === 'pair' ? (session.metadata as Record<string, unknown> | null)?.pair_session_id : undefined;
  if (typeof pairId !== 'string') return;
  const rested = events.some((e) => e.event_type === 'status' && REST.includes(String(e.payload.status)) && e.payload.reason !== 'created');
  if (rested) await advance(pairId);
});
