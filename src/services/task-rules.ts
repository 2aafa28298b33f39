/**
 * The task state machine (seed 003), as data: which statuses exist, which are final, what the
 * target agent may report from where, and how a hosted target's session moves its task. Every
 * change is still a compare-and-set on the task row (tasks.ts): these lists are its `from` sets.
 * Pure: the unit tier checks it without a database.
 */
import type { TaskStatus } from '../db/repositories/tasks.js';

export type { TaskStatus };

export const TASK_STATUSES: readonly TaskStatus[] = ['submitted', 'working', 'input-required', 'completed', 'failed', 'cancelled'];
export const TASK_TERMINAL: TaskStatus[] = ['completed', 'failed', 'cancelled'];
/** Not final yet: the statuses a cancel (by either party, or a deleted connection) applies to. */
export const TASK_OPEN: TaskStatus[] = ['submitted', 'working', 'input-required'];

/** What the target may report, from each status. Nothing is reported from a final status, and
 * `submitted` and `cancelled` are never reported (cancel has its own route). */
export const REPORTABLE: Partial<Record<TaskStatus, TaskStatus[]>> = {
  submitted: ['working', 'input-required', 'completed', 'failed'],
  working: ['input-required', 'completed', 'failed'],
  'input-required': ['working', 'completed', 'failed'],
};

/** The statuses a task may be in for its target to report `to` (empty: never reportable). */
export function reportableFrom(to: TaskStatus): TaskStatus[] {
  return TASK_OPEN.filter((s) => REPORTABLE[s]?.includes(to));
}

/** Whether the target may move a task from `from` to `to`. */
export const canReport = (from: TaskStatus, to: TaskStatus): boolean => reportableFrom(to).includes(from);

/**
 * A hosted target works its task in a session; the session's status changes drive the task:
 * running → working, idle (turn ended without finish: it waits on the requester) →
 * input-required, completed → completed, failed → failed, stopped → cancelled. Returns the move
 * as a compare-and-set (`from` → `to`), or null for statuses that leave the task as it is.
 */
export function taskMoveForSession(sessionStatus: string): { from: TaskStatus[]; to: TaskStatus } | null {
  switch (sessionStatus) {
    case 'running': return { from: ['submitted', 'input-required'], to: 'working' };
    case 'idle': return { from: ['submitted', 'working'], to: 'input-required' };
    case 'completed': return { from: TASK_OPEN, to: 'completed' };
    case 'failed': return { from: TASK_OPEN, to: 'failed' };
    case 'stopped': return { from: TASK_OPEN, to: 'cancelled' };
    default: return null;
  }
}
