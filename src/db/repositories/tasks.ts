/**
 * Tasks between connected agents and their messages (seed 003). Status changes are
 * compare-and-set statements: each names the statuses it may move from, and says whether it won.
 */
import { db, type Db } from '../knex.js';

export type TaskStatus = 'submitted' | 'working' | 'input-required' | 'completed' | 'failed' | 'cancelled';
export type ApprovalState = 'none' | 'pending' | 'approved' | 'rejected';

export interface TaskRow {
  id: string;
  from_agent_id: string;
  to_agent_id: string;
  connection_id: string | null;
  title: string;
  status: TaskStatus;
  approval_state: ApprovalState;
  /** The hosted target's session working the task. */
  session_id: string | null;
  /** The repository the target works on (issue 14), and the branch it starts from. */
  repository_id: string | null;
  base_branch: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface TaskMessageRow {
  id: string;
  task_id: string;
  from_agent_id: string;
  content: string;
  /** The session event it mirrors (a hosted agent's words), so it is mirrored once. */
  source_event_id: string | null;
  created_at: Date;
}

export interface NewTask {
  from_agent_id: string;
  to_agent_id: string;
  connection_id: string;
  title: string;
  approval_state: ApprovalState;
  repository_id?: string | null;
  base_branch?: string | null;
}

export async function byId(id: string, conn: Db = db): Promise<TaskRow | undefined> {
  return conn('tasks').where({ id }).first();
}

/** The task and its first message, together. */
export async function insertWithMessage(task: NewTask, message: string): Promise<TaskRow> {
  return db.transaction(async (tx) => {
    const [t] = await tx('tasks').insert(task).returning('*');
    await tx('task_messages').insert({ task_id: t.id, from_agent_id: task.from_agent_id, content: message });
    return t as TaskRow;
  });
}

/** CAS: moves the task to `to` if its status is one of `from`. The updated row, or undefined when it had moved on. */
export async function setStatusFrom(id: string, from: TaskStatus[], to: TaskStatus): Promise<TaskRow | undefined> {
  const [row] = await db('tasks').where({ id }).whereIn('status', from).update({ status: to, updated_at: db.fn.now() }).returning('*');
  return row;
}

/** CAS: a pending, submitted task is approved. */
export async function approve(id: string): Promise<TaskRow | undefined> {
  const [row] = await db('tasks').where({ id, approval_state: 'pending', status: 'submitted' }).update({ approval_state: 'approved', updated_at: db.fn.now() }).returning('*');
  return row;
}

/** CAS: a pending task is rejected, which cancels it. */
export async function reject(id: string): Promise<TaskRow | undefined> {
  const [row] = await db('tasks').where({ id, approval_state: 'pending' }).update({ approval_state: 'rejected', status: 'cancelled', updated_at: db.fn.now() }).returning('*');
  return row;
}

export async function setSession(id: string, sessionId: string): Promise<void> {
  await db('tasks').where({ id }).update({ session_id: sessionId, updated_at: db.fn.now() });
}

/** An agent's tasks, newest first: those it asked (from), was asked (to), or both. */
export async function listFor(agentId: string, q: { role?: 'from' | 'to'; status?: string; limit: number; offset: number }): Promise<TaskRow[]> {
  const query = db('tasks').orderBy('created_at', 'desc').limit(q.limit).offset(q.offset);
  if (q.role === 'from') query.where({ from_agent_id: agentId });
  else if (q.role === 'to') query.where({ to_agent_id: agentId });
  else query.where((w) => w.where({ from_agent_id: agentId }).orWhere({ to_agent_id: agentId }));
  if (q.status) query.andWhere({ status: q.status });
  return query;
}

/** Tasks between two agents (either way round) whose status is not one of `except`. */
export async function betweenExcept(a: string, b: string, except: TaskStatus[]): Promise<TaskRow[]> {
  return db('tasks')
    .whereNotIn('status', except)
    .andWhere((w) => w.where({ from_agent_id: a, to_agent_id: b }).orWhere({ from_agent_id: b, to_agent_id: a }));
}

/** Inserts a message; undefined when its source event was already mirrored. */
export async function insertMessage(m: { task_id: string; from_agent_id: string; content: string; source_event_id: string | null }): Promise<TaskMessageRow | undefined> {
  const [row] = await db('task_messages').insert(m).onConflict('source_event_id').ignore().returning('*');
  return row;
}

export async function firstMessage(taskId: string): Promise<TaskMessageRow | undefined> {
  return db('task_messages').where({ task_id: taskId }).orderBy('created_at').first();
}

export async function messages(taskId: string): Promise<TaskMessageRow[]> {
  return db('task_messages').where({ task_id: taskId }).orderBy('created_at');
}
