/**
 * One session status, three vocabularies (README "Status words by route family"). Seed 004 and
 * every stream use the status as it is; seed 002 adds `state` (active for queued, running and
 * idle); seed 001 speaks its own words (created for queued, active for running and idle).
 * Pure: no database, so the unit tier checks the mapping both ways.
 */
import type { SessionStatus } from '../db/session-store.js';

export type State002 = 'active' | Exclude<SessionStatus, 'queued' | 'running' | 'idle'>;
export type Status001 = 'created' | 'active' | Exclude<SessionStatus, 'queued' | 'running' | 'idle'>;

export const state002 = (s: SessionStatus): State002 => (s === 'queued' || s === 'running' || s === 'idle' ? 'active' : s);
export const status001 = (s: SessionStatus): Status001 => (s === 'queued' ? 'created' : s === 'running' || s === 'idle' ? 'active' : s);

/** Seed 001 status words accepted by PATCH and ?status=, and the statuses they cover. */
export const FROM_001: Record<string, SessionStatus[]> = {
  created: ['queued'], active: ['running', 'idle'], paused: ['paused'], completed: ['completed'], failed: ['failed'], stopped: ['stopped'],
} satisfies Record<Status001, SessionStatus[]>;
/** Seed 002 states and the statuses they cover. */
export const FROM_002: Record<string, SessionStatus[]> = {
  active: ['queued', 'running', 'idle'], paused: ['paused'], completed: ['completed'], failed: ['failed'], stopped: ['stopped'],
} satisfies Record<State002, SessionStatus[]>;
