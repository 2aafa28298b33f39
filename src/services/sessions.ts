/**
 * The session actor's mailbox, seen from the API: create, message, pause, resume, stop,
 * interrupt. Each is a compare-and-set on the session row (db/session-store.ts); illegal
 * transitions are 409. The container is never touched here: the worker that owns it is sent a
 * command (services/ports.ts) and the answer waits for its acknowledgement.
 */
import crypto from 'node:crypto';
import { db, type Tx } from '../db/knex.js';
import {
  ACTIVE, activeSessionsOfAgent, getSession, insertSession, loadEvents, removeSession, sessionByIdempotencyKey, sessionInProjects, writeSession,
  type EventRow, type SessionRow, type SessionStatus, type WriteResult,
} from '../db/session-store.js';
import { badRequest, conflict, isDomainError, notFound, timedOut, unavailable } from '../domain/errors.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import * as hosts from '../db/repositories/hosts.js';
import { config } from '../config.js';
import { ports } from '../domain/ports.js';
import { isUuid, type Membership } from './access.js';
import { requireAgent, type AgentRow } from './agents.js';
import { insertSandbox, type SandboxInput, type SandboxRow } from './sandboxes.js';
import { assertRunningSessionQuota } from './quotas.js';
import { repositoryForWork } from './repositories.js';
import { pendingToolUses } from '../runtime/context.js';

export interface CreateSessionInput {
  agentRef: string;
  message?: string | null;
  prompt?: string | null;
  triggerType?: 'api' | 'chat' | 'task_assigned' | 'pair';
  taskId?: string | null;
  taskTitle?: string | null;
  metadata?: Record<string, unknown>;
  data?: Record<string, unknown>;
  /** Work in this existing sandbox instead of a new one of its own. */
  sandbox?: SandboxRow;
  sandboxInput?: SandboxInput;
  chatSessionId?: string;
  /** The request's Idempotency-Key: a retry returns the session it created. */
  idempotencyKey?: string;
  /** A repository of the project (id or name) the worker clones before the first turn (needs can_clone_repos). */
  repository?: string | null;
  /** The branch to start from (default: the repository's default branch). */
  baseBranch?: string | null;
}

export async function createSession(m: Membership, input: CreateSessionInput): Promise<SessionRow> {
  const agent = await requireAgent(m.projectId, input.agentRef).catch((err) => {
    if (isDomainError(err, 'not_found')) throw badRequest(`Unknown agent "${input.agentRef}" in this project`);
    throw err; // the database, not the input
  });
  if (input.idempotencyKey) {
    const earlier = await sessionByIdempotencyKey(m.projectId, m.memberId, input.idempotencyKey);
    if (earlier) return finishCreation(earlier, agent, input);
  }
  if (agent.kind === 'external') {
    throw badRequest(`Agent "${agent.handle}" is external: it drives itself with its API key; sessions run hosted agents`);
  }
  if (input.message ?? input.prompt) await assertHostRoom();
  if (!input.repository && input.baseBranch) throw badRequest('base_branch needs a repository');
  const work = input.repository ? await repositoryForWork(m.projectId, agent, input.repository, input.baseBranch) : null;
  const id = await db.transaction(async (tx) => {
    // A session that starts with work is one more queued: within the project's quota (429).
    if (input.message ?? input.prompt) await assertRunningSessionQuota(tx, m.projectId);
    // Same key, same member, raced here twice: the unique index lets only one insert through.
    const sessionId = crypto.randomUUID();
    // Without a shared sandbox the session gets one of its own, removed when the session stops.
    const sb = input.sandbox ?? (await insertSandbox(tx, m.projectId, agent, input.sandboxInput ?? {}, sessionId));
    await insertSession(tx, {
      id: sessionId, project_id: m.projectId, agent_id: agent.id, sandbox_id: sb.id,
      created_by_member_id: m.memberId, trigger_type: input.triggerType ?? 'api',
      task_id: input.taskId ?? null, task_title: input.taskTitle ?? null, chat_session_id: input.chatSessionId ?? null,
      prompt: input.prompt ?? null, idempotency_key: input.idempotencyKey ?? null,
      metadata: input.metadata ?? {}, data: input.data ?? {},
      repository_id: work?.repository.id ?? null, base_branch: work?.baseBranch ?? null,
    });
    return sessionId;
  }).catch(async (err) => {
    if (err.code !== '23505' || !input.idempotencyKey) throw err;
    return (await sessionByIdempotencyKey(m.projectId, m.memberId, input.idempotencyKey))!.id;
  });
  return finishCreation((await getSession(id))!, agent, input);
}

/**
 * The hard cap on waiting for a worker host: when no live host has room and
 * TROUPE_HOST_MAX_WAITING sessions already wait, a new session with work is refused (503 with
 * Retry-After) rather than queued behind them. Below the cap it is queued and waits, visibly.
 */
async function assertHostRoom(): Promise<void> {
  if (await hosts.anyRoom(config.hostDeadSeconds)) return;
  const waiting = await hosts.waitingCount();
  if (waiting >= config.hostMaxWaiting) {
    throw unavailable(`Every worker host is full and ${waiting} sessions already wait for room (TROUPE_HOST_MAX_WAITING=${config.hostMaxWaiting}). Retry later.`, 30);
  }
}

/**
 * Writes a new session's first events and queues it. Safe to repeat: a session whose creation
 * was interrupted before its first event (next_event_index 0) is completed by the retry.
 */
async function finishCreation(s: SessionRow, agent: AgentRow, input: CreateSessionInput): Promise<SessionRow> {
  if (s.next_event_index > 0) return s;
  const id = s.id;
  const first = input.message ?? input.prompt ?? null;
  // A new session starts queued when it has something to do, idle otherwise.
  // The first status event says who and why, for agent:conversation:started.
  const origin = { agent_id: agent.id, trigger_type: input.triggerType ?? 'api' };
  const created = { event_type: 'status' as const, event_source: 'system' as const, payload: { status: 'queued', previous_status: null, reason: 'created', ...origin } };
  const res = first
    ? await writeSession(id, [created, userMessage(first)], { expectNextIndex: 0 })
    : await writeSession(id, [], { to: 'idle', reason: 'created', statusExtra: origin, expectNextIndex: 0 });
  if (!res) return (await getSession(id))!; // a concurrent retry finished it
  if (res.session.status === 'queued') await ports().activations.enqueue(id, res.session.activation);
  return res.session;
}

export function userMessage(text: string, extra: Record<string, unknown> = {}) {
  return { event_type: 'message' as const, event_source: 'user' as const, payload: { role: 'user', message: text, ...extra } };
}

export async function requireSession(projectIds: string[], id: string): Promise<SessionRow> {
  const s = isUuid(id) ? await sessionInProjects(projectIds, id) : null;
  if (!s) throw notFound('Session');
  return s;
}

const illegal = (action: string, s: { status: string }) =>
  conflict(`Cannot ${action} a session that is ${s.status}`);

async function ownSandbox(s: SessionRow): Promise<SandboxRow | undefined> {
  const sb = await sandboxes.byId(s.sandbox_id);
  return sb && sb.owner_session_id === s.id ? sb : undefined;
}

/** The activation that was driving the session before a control action fenced it off, if any. */
const fencedOff = (res: WriteResult) => (res.previousStatus === 'running' ? res.session.activation - 1 : null);

/**
 * Freezes the container (if the session has its own) and frees the worker slot. The row says
 * paused first; the worker that owns the container freezes it once the activation has stood
 * down, and the answer waits for that.
 */
export async function pauseSession(s: SessionRow, reason = 'paused by request'): Promise<SessionRow> {
  const res = await writeSession(s.id, [], { from: ['queued', 'running', 'idle'], to: 'paused', bumpActivation: true, reason });
  if (!res) throw illegal('pause', (await getSession(s.id)) ?? s);
  const was = fencedOff(res);
  const sb = await ownSandbox(res.session);
  if (sb) {
    await sandboxes.setState(sb.id, 'paused');
    await ports().commands.pause(sb.id, was === null ? undefined : { sessionId: s.id, activation: was });
  } else {
    await ports().commands.release(s.id, was ?? res.session.activation, 'pause', was !== null);
  }
  return res.session;
}

/** Counts a session about to become queued (woken or resumed) against the project's running-session quota. */
const busyQuota = async (tx: Tx, cur: SessionRow, to: SessionStatus | undefined) => {
  if (to === 'queued' && cur.status !== 'queued' && cur.status !== 'running') await assertRunningSessionQuota(tx, cur.project_id);
};

export async function resumeSession(s: SessionRow): Promise<SessionRow> {
  const res = await writeSession(s.id, [], { from: ['paused'], to: 'queued', bumpActivation: true, reason: 'resumed', guard: busyQuota });
  if (!res) throw illegal('resume', (await getSession(s.id)) ?? s);
  const enqueue = () => ports().activations.enqueue(s.id, res.session.activation);
  const sb = await ownSandbox(res.session);
  if (!sb) {
    await enqueue();
    return res.session;
  }
  await sandboxes.setState(sb.id, 'active');
  const pending = pendingToolUses(await loadEvents(s.id));
  if (pending.length) {
    // Runs frozen mid-call are ended before the next activation may start them again.
    await ports().commands.resume(sb.id, pending.map((p) => p.id));
    await enqueue();
  } else {
    // Nothing to end: the worker may claim while Docker unpauses (it wakes a paused container
    // itself before touching it; see ensureContainer), so the two overlap.
    await Promise.all([enqueue(), ports().commands.resume(sb.id)]);
  }
  return res.session;
}

/** Final: aborts whatever runs, removes the session's own container. */
export async function stopSession(s: SessionRow, reason = 'stopped by request', to: SessionStatus = 'stopped'): Promise<SessionRow> {
  const res = await writeSession(s.id, [], { from: ACTIVE, to, bumpActivation: true, reason });
  if (!res) throw illegal(to === 'completed' ? 'complete' : 'stop', (await getSession(s.id)) ?? s);
  const sb = await ownSandbox(res.session);
  if (sb) {
    await sandboxes.setState(sb.id, 'stopped');
    await ports().commands.remove(sb.id, s.id);
  } else {
    await ports().commands.release(s.id, res.session.activation, 'stop', false);
  }
  return res.session;
}

/** Aborts the current model call or tool, keeps the sandbox; the session becomes idle. */
export async function interruptSession(s: SessionRow): Promise<SessionRow> {
  const current = (await getSession(s.id))!;
  if (current.status === 'idle') return current;
  const res = await writeSession(s.id, [], { from: ['queued', 'running'], to: 'idle', bumpActivation: true, reason: 'interrupted' });
  if (!res) throw illegal('interrupt', (await getSession(s.id)) ?? s);
  const was = fencedOff(res);
  await ports().commands.release(s.id, was ?? res.session.activation, 'interrupt', was !== null);
  // The worker has stood down now; close any tool call it left open so the history stays valid.
  const pending = pendingToolUses(await loadEvents(s.id));
  if (pending.length) {
    await writeSession(s.id, pending.map((p) => ({
      event_type: 'tool_result' as const, event_source: 'environment' as const,
      payload: { tool_use_id: p.id, name: p.name, content: 'Interrupted by the user before the tool finished.', is_error: true, interrupted: true },
    })));
  }
  return (await getSession(s.id))!;
}

/**
 * A chat's conversations take messages only through the chat (which records the human turn and
 * belongs to one member); the session routes would let any member speak into someone's chat.
 */
export function assertDirectMessages(s: SessionRow): void {
  if (s.chat_session_id) {
    throw conflict('This conversation belongs to a chat session: its owner sends messages with POST /api/v1/projects/:projectId/chat-sessions/:sessionId/messages');
  }
}

export async function sendMessage(s: SessionRow, text: string, extra: Record<string, unknown> = {}): Promise<{ session: SessionRow; event: EventRow }> {
  // Waking an idle session makes it queued: that counts against the running-session quota (429).
  const res = await writeSession(s.id, [userMessage(text, extra)], { from: ACTIVE, wakeIfIdle: true, guard: busyQuota });
  if (!res) {
    const cur = (await getSession(s.id)) ?? s;
    throw conflict(`Cannot send a message to a session that is ${cur.status}`);
  }
  if (res.previousStatus === 'idle' && res.session.status === 'queued') await ports().activations.enqueue(s.id, res.session.activation);
  return { session: res.session, event: res.events[0] };
}

/** Waits until the session is done with what it was given (not queued or running any more). */
export async function waitForRest(sessionId: string, timeoutMs: number): Promise<SessionRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await getSession(sessionId))!;
    if (!['queued', 'running'].includes(s.status)) return s;
    if (Date.now() > deadline) throw timedOut(`The agent did not answer within ${Math.round(timeoutMs / 1000)}s; use ?wait=false and the stream`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Seed 001's PATCH: a status word (paused pauses, active resumes, completed ends, stopped stops),
 * `data` merged into the session's data, and the prompt. Every change goes through the session
 * store, so it is fenced and published like any other.
 */
export async function updateSession001(s: SessionRow, change: { status?: string; data?: Record<string, unknown>; prompt?: string }): Promise<void> {
  if (change.status) {
    const current = (await getSession(s.id))!;
    if (change.status === 'paused') await pauseSession(current);
    else if (change.status === 'active') {
      if (current.status === 'paused') await resumeSession(current);
      else if (!['queued', 'running', 'idle'].includes(current.status)) throw conflict(`Cannot make a ${current.status} session active`);
    } else if (change.status === 'completed') await stopSession(current, 'ended by request', 'completed');
    else if (change.status === 'stopped') await stopSession(current);
    else throw badRequest(`Unsupported status ${change.status}`);
  }
  const patch: Record<string, unknown> = {};
  if (change.prompt) patch.prompt = change.prompt;
  if (change.data || change.prompt) await writeSession(s.id, [], { patch, mergeData: change.data });
}

/** Seed 001's DELETE: stops the session (its container goes), then removes it and its events. */
export async function deleteSession(s: SessionRow): Promise<void> {
  await stopSession(s, 'deleted').catch((err) => {
    if (!isDomainError(err, 'conflict')) throw err; // already terminal: just delete
  });
  await removeSession(s.id);
}

export async function stopSessionsOfAgent(agentId: string, reason: string): Promise<number> {
  const rows = await activeSessionsOfAgent(agentId);
  let n = 0;
  for (const s of rows) {
    try {
      await stopSession(s, reason);
      n++;
    } catch (err) {
      if (!isDomainError(err)) throw err;
    }
  }
  return n;
}

/** The one definition lives with the session types. */
export { isTerminal } from '../domain/sessions.js';

export type { AgentRow };
