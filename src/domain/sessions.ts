/**
 * What a session and its durable events are, as types, and the status lists every layer shares
 * (one list of terminal statuses, not a copy per module).
 */
export type SessionStatus = 'queued' | 'running' | 'idle' | 'paused' | 'completed' | 'stopped' | 'failed';
/** Final: nothing moves a session out of these. */
export const TERMINAL: readonly SessionStatus[] = ['completed', 'stopped', 'failed'];
export const ACTIVE: readonly SessionStatus[] = ['queued', 'running', 'idle', 'paused'];
export const isTerminal = (status: string): boolean => (TERMINAL as readonly string[]).includes(status);

/**
 * `pr_created` (issue 14): a session opened (or updated, `action`) its pull request; it carries
 * the seed's Socket.IO event agent:conversation:pr_created and the SSE event of the same name.
 */
export type EventType = 'message' | 'tool_use' | 'tool_result' | 'status' | 'error' | 'pr_created';
export type EventSource = 'user' | 'agent' | 'environment' | 'system';

export interface NewEvent {
  event_type: EventType;
  event_source: EventSource;
  payload: Record<string, unknown>;
}

export interface EventRow extends NewEvent {
  id: string;
  session_id: string;
  project_id: string;
  event_index: number;
  created_at: string | Date;
}

export type TriggerType = 'api' | 'chat' | 'task_assigned' | 'pair';

export interface SessionRow {
  id: string;
  project_id: string;
  agent_id: string;
  sandbox_id: string;
  created_by_member_id: string | null;
  trigger_type: TriggerType;
  task_id: string | null;
  task_title: string | null;
  chat_session_id: string | null;
  status: SessionStatus;
  error: string | null;
  iteration_count: number;
  /** Fencing token: bumped by every claim and control action. */
  activation: number;
  worker_id: string | null;
  next_event_index: number;
  /** Last event index the event pipeline's feature listeners have handled. */
  reacted_index: number;
  /** The repository the session works on (cloned into /workspace/<name> by the worker), if any. */
  repository_id: string | null;
  /** The branch its work branches from, and the pull request's base. */
  base_branch: string | null;
  /** `agent/<slug>`: the session's own branch, once cloned. */
  branch_name: string | null;
  pr_url: string | null;
  pr_number: number | null;
  prompt: string | null;
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
  data: Record<string, unknown>;
  last_active_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** One committed write of the session store: the row after it, and the events it appended. */
export interface SessionCommit {
  session: SessionRow;
  events: EventRow[];
  previousStatus: SessionStatus;
}
