/** Task tools (section 8): a session working a task talks to its requester and reports status. */
import { runTaskTool, TASK_TOOLS } from '../../services/tasks.js';
import type { ToolFamily } from './types.js';

const NAMES = new Set(TASK_TOOLS.map((t) => t.name));

/** Offered to sessions triggered by a task; a call from any other session is told it has no task. */
export function taskTools(offered: boolean): ToolFamily {
  return {
    definitions: offered ? TASK_TOOLS : [],
    has: (name) => NAMES.has(name),
    run: (call, ctx) => runTaskTool(ctx.session, call.id, call.name, call.input),
  };
}
