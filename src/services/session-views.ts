/**
 * One session row, three vocabularies. Seed 004 calls it a conversation and uses our status words
 * as they are; seed 002 adds `state` (active for queued, running and idle); seed 001 speaks its
 * own words (created for queued, active for running and idle).
 */
import * as sessionViews from '../db/repositories/session-views.js';
import type { SessionViewRow } from '../db/repositories/session-views.js';
import type { EventRow, SessionRow } from '../db/session-store.js';

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
  };
}

export function eventView(e: EventRow) {
  return {
    id: e.id, session_id: e.session_id, event_index: e.event_index, event_type: e.event_type,
    event_source: e.event_source, payload: e.payload, created_at: e.created_at,
  };
}
