/**
 * Tasks between connected agents (seed 003). An external target does the work itself and reports
 * through the API; a hosted target gets a session (trigger_type task_assigned) whose status
 * drives the task's: running → working, turn ended with a question → input-required (its text
 * becomes a task message), finish → completed, failed → failed, stopped → cancelled.
 * Status changes are compare-and-set on the task row; illegal ones are 409.
 */
import type { AgentRow } from '../db/repositories/agents.js';
import * as agents from '../db/repositories/agents.js';
import * as connections from '../db/repositories/connections.js';
import * as sessionEvents from '../db/repositories/session-events.js';
import * as tasks from '../db/repositories/tasks.js';
import type { TaskMessageRow, TaskRow, TaskStatus } from '../db/repositories/tasks.js';
import type { EventRow, SessionRow } from '../db/session-store.js';
import { badRequest, conflict, forbidden, notFound } from '../domain/errors.js';
import { isTerminal } from '../domain/sessions.js';
import { log } from '../log.js';
import { isUuid } from './access.js';
import { one } from './acting-agent.js';
import { repositoryForWork } from './repositories.js';
import { emitToAgent } from './hub.js';
import { reportableFrom, TASK_OPEN, TASK_TERMINAL } from './task-rules.js';

export type { TaskStatus };
export { TASK_TERMINAL } from './task-rules.js';
/** An agent as a party to a task: only its id matters here. */
type Party = Pick<AgentRow, 'id'>;

export function taskView(t: TaskRow) {
  return {
    id: t.id, fromAgentId: t.from_agent_id, toAgentId: t.to_agent_id, title: t.title, status: t.status,
    approval: t.approval_state, sessionId: t.session_id, repositoryId: t.repository_id, baseBranch: t.base_branch, createdAt: t.created_at, updatedAt: t.updated_at,
  };
}

export async function requireTask(agent: Party, id: string): Promise<TaskRow> {
  const t = isUuid(id) ? await tasks.byId(id) : null;
  if (!t || (t.from_agent_id !== agent.id && t.to_agent_id !== agent.id)) throw notFound('Task');
  return t;
}

const otherParty = (t: TaskRow, agentId: string) => (t.from_agent_id === agentId ? t.to_agent_id : t.from_agent_id);

/** CAS on the task row; tells the other party. Returns the updated row or null when the status moved on. */
async function setStatus(taskId: string, from: TaskStatus[], to: TaskStatus, notify: string[]): Promise<TaskRow | null> {
  const row = await tasks.setStatusFrom(taskId, from, to);
  if (!row) return null;
  for (const agentId of notify) await emitToAgent(agentId, { type: 'task.updated', taskId, status: to });
  return row;
}

export async function createTask(from: Party, input: { toAgentId: string; title: string; message: string; repository?: string; baseBranch?: string }) {
  // By id, or by handle among the agents `from` is connected to.
  const to = isUuid(input.toAgentId)
    ? await agents.liveById(input.toAgentId)
    : one(input.toAgentId, await agents.connectedWithHandle(from.id, input.toAgentId));
  const conn = to ? await connections.activeBetween(from.id, to.id) : null;
  if (!to || !conn) throw notFound('Connected agent');
  const needsApproval = to.approval === 'require' || conn.approval === 'require';
  const work = await taskRepository(from, to, input);
  const task = await tasks.insertWithMessage(
    {
      from_agent_id: from.id, to_agent_id: to.id, connection_id: conn.id, title: input.title, approval_state: needsApproval ? 'pending' : 'none',
      repository_id: work?.repository.id ?? null, base_branch: work?.baseBranch ?? null,
    },
    input.message,
  );
  if (needsApproval) {
    await emitToAgent(to.id, { type: 'task.approval_required', taskId: task.id, fromAgentId: from.id });
  } else {
    await emitToAgent(to.id, { type: 'task.created', taskId: task.id, fromAgentId: from.id });
    await startHostedWork(task);
  }
  return taskView((await tasks.byId(task.id))!);
}

/**
 * The repository a task names (issue 14): one of the target's project, named by an agent of the
 * same project, for a hosted target with can_clone_repos (403 otherwise).
 */
async function taskRepository(from: Party, to: { project_id: string; handle: string; kind: string; can_clone_repos: boolean }, input: { repository?: string; baseBranch?: string }) {
  if (!input.repository) {
    if (input.baseBranch) throw badRequest('baseBranch needs a repository');
    return null;
  }
  if (to.kind !== 'hosted') throw badRequest('Only a hosted agent works on a repository: an external agent clones what it likes itself');
  const fromRow = await agents.byId(from.id);
  if (!fromRow || fromRow.project_id !== to.project_id) throw forbidden("Only an agent of the target's own project may name one of its repositories");
  return repositoryForWork(to.project_id, to, input.repository, input.baseBranch);
}

/** A hosted target works the task in a session of its own. */
async function startHostedWork(task: TaskRow) {
  const to = (await agents.byId(task.to_agent_id))!;
  if (to.kind !== 'hosted') return;
  const first = await tasks.firstMessage(task.id);
  const fromName = await agents.nameOf(task.from_agent_id);
  const { createSession } = await import('./sessions.js');
  const memberId = to.member_id!; // an agent gets its member row when it is created
  const session = await createSession(
    { projectId: to.project_id, memberId, role: 'member', principal: { kind: 'agent', agentId: to.id, projectId: to.project_id, memberId, keyId: '' } },
    {
      agentRef: to.id, triggerType: 'task_assigned', taskId: task.id, taskTitle: task.title,
      repository: task.repository_id, baseBranch: task.base_branch,
      message: `Task from ${fromName ?? 'another agent'}: ${task.title}\n\n${first?.content ?? ''}\n\n` +
        'Use task_reply to message the requester and task_update_status to report progress; call finish when done.',
    },
  );
  await tasks.setSession(task.id, session.id);
}

export async function approveTask(agent: Party, id: string) {
  const t = await requireTask(agent, id);
  if (t.to_agent_id !== agent.id) throw forbidden('Only the task\'s target agent can approve it');
  const row = await tasks.approve(t.id);
  if (!row) throw conflict(`This task is not awaiting approval (status ${t.status}, approval ${t.approval_state})`);
  await emitToAgent(t.from_agent_id, { type: 'task.updated', taskId: t.id, status: 'submitted' });
  await startHostedWork(row);
  return taskView((await tasks.byId(t.id))!);
}

export async function rejectTask(agent: Party, id: string) {
  const t = await requireTask(agent, id);
  if (t.to_agent_id !== agent.id) throw forbidden('Only the task\'s target agent can reject it');
  const row = await tasks.reject(t.id);
  if (!row) throw conflict('This task is not awaiting approval');
  await emitToAgent(t.from_agent_id, { type: 'task.updated', taskId: t.id, status: 'cancelled' });
  return taskView(row);
}

export async function cancelTask(agent: Party, id: string) {
  const t = await requireTask(agent, id);
  const row = await setStatus(t.id, TASK_OPEN, 'cancelled', [otherParty(t, agent.id)]);
  if (!row) throw conflict(`Cannot cancel a task that is ${t.status}`);
  await stopTaskSession(row);
  return taskView(row);
}

export async function reportStatus(agent: Party, id: string, status: TaskStatus) {
  const t = await requireTask(agent, id);
  if (t.to_agent_id !== agent.id) throw forbidden('Only the task\'s target agent reports its status; the requester may cancel it');
  if (t.approval_state === 'pending') throw conflict('Approve the task before working on it');
  const row = await setStatus(t.id, reportableFrom(status), status, [t.from_agent_id]);
  if (!row) throw conflict(`Cannot change a task from ${t.status} to ${status}`);
  return taskView(row);
}

export async function listTasks(agent: Party, q: { role?: 'from' | 'to'; status?: string; limit: number; offset: number }) {
  return (await tasks.listFor(agent.id, q)).map(taskView);
}

export async function postTaskMessage(agent: Party, id: string, content: string, sourceEventId?: string) {
  const t = await requireTask(agent, id);
  if (TASK_TERMINAL.includes(t.status)) throw conflict(`The task is ${t.status}`);
  const m = await tasks.insertMessage({ task_id: t.id, from_agent_id: agent.id, content, source_event_id: sourceEventId ?? null });
  if (!m) return null; // already mirrored
  await emitToAgent(otherParty(t, agent.id), { type: 'message.created', taskId: t.id, messageId: m.id, fromAgentId: agent.id });
  // The requester's answer goes into the hosted agent's session and puts it back to work.
  if (agent.id === t.from_agent_id && t.session_id) {
    const { getSession } = await import('../db/session-store.js');
    const { sendMessage } = await import('./sessions.js');
    const s = await getSession(t.session_id);
    if (s && !isTerminal(s.status)) await sendMessage(s, content).catch(() => {});
  }
  return taskMessageView(m);
}

export function taskMessageView(m: TaskMessageRow) {
  return { id: m.id, taskId: m.task_id, fromAgentId: m.from_agent_id, content: m.content, createdAt: m.created_at };
}

export async function listTaskMessages(agent: Party, id: string) {
  const t = await requireTask(agent, id);
  return (await tasks.messages(t.id)).map(taskMessageView);
}

export async function cancelTasksBetween(a: string, b: string, by: string): Promise<number> {
  const rows = await tasks.betweenExcept(a, b, TASK_TERMINAL);
  let n = 0;
  for (const t of rows) {
    const row = await setStatus(t.id, TASK_OPEN, 'cancelled', [otherParty(t, by)]);
    if (row) {
      n++;
      await stopTaskSession(row);
    }
  }
  return n;
}

async function stopTaskSession(t: TaskRow) {
  if (!t.session_id) return;
  const { getSession } = await import('../db/session-store.js');
  const { stopSession } = await import('./sessions.js');
  const s = await getSession(t.session_id);
  if (s && !isTerminal(s.status)) await stopSession(s, 'task cancelled').catch(() => {});
}

// --- the hosted agent's side: session status drives the task; task tools ------------------------

/** Pipeline listener: the hosted agent's session status drives its task's status. */
export async function onTaskSessionEvents(session: SessionRow, events: EventRow[]): Promise<void> {
  if (session.trigger_type !== 'task_assigned' || !session.task_id) return;
  const task = await tasks.byId(session.task_id);
  if (!task || TASK_TERMINAL.includes(task.status)) return;
  const to: Party = { id: task.to_agent_id };
  for (const e of events) {
    if (e.event_type === 'pr_created') {
      // The requester hears of the pull request in the task's thread (keyed by the event: once).
      const p = e.payload as { action?: string; pr_url?: string; branch_name?: string; title?: string };
      const text = `${p.action === 'updated' ? 'Updated' : 'Opened'} pull request ${p.pr_url} (branch ${p.branch_name}): ${p.title ?? ''}`.trim();
      await postTaskMessage(to, task.id, text, e.id).catch((err) => log.debug({ err }, 'task message for the pull request skipped'));
      continue;
    }
    // Notices that change no status (sandbox replaced or restarted, waiting for a host) move no task.
    if (e.event_type !== 'status' || e.payload.sandbox_replaced || e.payload.sandbox_restarted || e.payload.waiting_for_host) continue;
    const status = (e.payload as { status: string }).status;
    if (status === 'running') await setStatus(task.id, ['submitted', 'input-required'], 'working', [task.from_agent_id]);
    else if (status === 'idle') {
      // The turn ended without finish: the agent is waiting on the requester.
      const last = await sessionEvents.lastAgentMessage(session.id);
      const text = String(last?.payload?.message ?? '').trim();
      if (text) await postTaskMessage(to, task.id, text, last!.id).catch((err) => log.debug({ err }, 'task message mirror skipped'));
      await setStatus(task.id, ['submitted', 'working'], 'input-required', [task.from_agent_id]);
    } else if (status === 'completed') {
      const reason = String((e.payload as { reason?: string }).reason ?? '').replace(/^finished: ?/, '');
      if (reason) await postTaskMessage(to, task.id, reason, e.id).catch(() => {});
      await setStatus(task.id, ['submitted', 'working', 'input-required'], 'completed', [task.from_agent_id]);
    } else if (status === 'failed') await setStatus(task.id, ['submitted', 'working', 'input-required'], 'failed', [task.from_agent_id]);
    else if (status === 'stopped') await setStatus(task.id, ['submitted', 'working', 'input-required'], 'cancelled', [task.from_agent_id]);
  }
}

export const TASK_TOOLS = [
  {
    name: 'task_reply',
    description: 'Send a message to the agent that gave you this task (a question, an update, or the result).',
    input_schema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
  },
  {
    name: 'task_update_status',
    description: 'Set the task status: working, input-required (you need an answer), completed or failed.',
    input_schema: { type: 'object', properties: { status: { type: 'string', enum: ['working', 'input-required', 'completed', 'failed'] } }, required: ['status'] },
  },
];

/** Runs a task tool for a hosted agent's session. */
export async function runTaskTool(session: SessionRow, toolUseId: string, name: string, input: Record<string, unknown>): Promise<{ content: string; is_error: boolean; exit_code?: number }> {
  const task = session.task_id ? await tasks.byId(session.task_id) : null;
  if (!task) return { content: 'This session has no task', is_error: true };
  const me: Party = { id: task.to_agent_id };
  try {
    if (name === 'task_reply') {
      await postTaskMessage(me, task.id, String(input.message ?? ''), undefined);
      return { content: 'Message sent to the requester.', is_error: false };
    }
    if (name === 'task_update_status') {
      await reportStatus(me, task.id, String(input.status) as TaskStatus);
      return { content: `Task status is now ${String(input.status)}.`, is_error: false };
    }
  } catch (err) {
    return { content: (err as Error).message, is_error: true };
  }
  return { content: `Unknown task tool ${name} (${toolUseId})`, is_error: true };
}
