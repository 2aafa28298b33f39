/**
 * One session row, three vocabularies. Seed 004 calls it a conversation and uses our status words
 * as they are; seed 002 adds `state` (active for queued, running and idle); seed 001 speaks its
 * own words (created for queued, active for running and idle).
 */
import * as sessionViews from '../db/repositories/session-views.js';
import type { SessionViewRow } from '../db/repositories/session-views.js';
import { loadEventsBefore, type EventRow, type SessionRow } from '../db/session-store.js';
import { messagesView } from '../runtime/context.js';

export type { SessionViewRow };
export type { SessionViewFilter } from '../db/repositories/session-views.js';

/** Sessions matching a filter, as views (the 001, 002 and 004 lists). */
export async function listSessionViews(f: sessionViews.SessionViewFilter) {
  return sessionViews.list(f);
}
import { state002, status001 } from './status-words.js';

export { FROM_001, FROM_002, state002, status001 } from './status-words.js';

export async function withViewData(s: SessionRow): Promise<SessionViewRow> {
  return (await sessionViews.viewById(s.id)) ?? s;
}

export function conversationView(s: SessionViewRow) {
  return {
    id: s.id,
    project_id: s.project_id,
    agent_id: s.agent_id,
    trigger_type: s.trigger_type,
    task_id: s.task_id,
    task_title: s.task_title,
    status: s.status,
    error: s.error,
    iteration_count: s.iteration_count,
    branch_name: s.branch_name,
    pr_url: s.pr_url,
    repository_id: s.repository_id ?? null,
    base_branch: s.base_branch ?? null,
    sandbox_id: s.sandbox_id,
    container_id: s.container_id ?? null,
    started_at: s.started_at,
    finished_at: s.finished_at,
    created_at: s.created_at,
    updated_at: s.updated_at,
  };
}

export function session002View(s: SessionViewRow) {
  return {
    id: s.id,
    sandbox_id: s.sandbox_id,
    agent_id: s.agent_id,
    project_id: s.project_id,
    state: state002(s.status),
    status: s.status,
    error: s.error,
    metadata: s.metadata ?? {},
    container_id: s.container_id ?? null,
    repository_id: s.repository_id ?? null,
    branch_name: s.branch_name,
    pr_url: s.pr_url,
    created_at: s.created_at,
    updated_at: s.updated_at,
  };
}

export function session001View(s: SessionViewRow) {
  return {
    id: s.id,
    agent_id: s.agent_id,
    task_id: s.task_id,
    project_id: s.project_id,
    status: status001(s.status),
    error: s.error,
    prompt: s.prompt,
    created_at: s.created_at,
    last_active: s.last_active_at,
    message_count: s.message_count ?? 0,
    data: s.data ?? {},
    container_id: s.container_id ?? null,
    repository_id: s.repository_id ?? null,
    branch_name: s.branch_name,
    pr_url: s.pr_url,
  };
}

export function eventView(e: EventRow) {
  return {
    id: e.id, session_id: e.session_id, event_index: e.event_index, event_type: e.event_type,
    event_source: e.event_source, payload: e.payload, created_at: e.created_at,
  };
}

/** Events read per query when paging a log backwards, and the most one page of messages reads. */
const EVENT_PAGE = 500;
const MAX_WINDOW = 20_000;

/**
 * The newest `limit` messages (content-block view) before event `before`, read backwards a page
 * of events at a time, so a session with a huge log is never loaded whole. `before` for the next
 * (older) page is the event_index of the first message returned; null when there is nothing older.
 */
export async function messagesPage(sessionId: string, opts: { limit: number; before?: number }) {
  let window: EventRow[] = [];
  let cursor = opts.before;
  let atStart = false;
  for (;;) {
    const page = await loadEventsBefore(sessionId, cursor, EVENT_PAGE, ['message', 'tool_use', 'tool_result']);
    window = page.reverse().concat(window);
    if (page.length < EVENT_PAGE) {
      atStart = true;
      break;
    }
    cursor = window[0].event_index;
    // More than `limit` messages: the first may have begun before the window, the rest are whole.
    if (messagesView(sessionId, window).length > opts.limit || window.length >= MAX_WINDOW) break;
  }
  let msgs = messagesView(sessionId, window);
  if (!atStart && msgs.length > 1) msgs = msgs.slice(1);
  const out = msgs.slice(-opts.limit);
  const hasMore = !atStart || msgs.length > out.length;
  const indexOf = new Map(window.map((e) => [e.id, e.event_index]));
  return { messages: out, has_more: hasMore, before: hasMore && out.length ? indexOf.get(out[0].id) ?? null : null };
}
