/**
 * Reads of session_events that features need (task mirroring, chat, pair rounds). Writing events
 * is the session store's alone (src/db/session-store.ts).
 */
import type { EventRow } from '../../domain/sessions.js';
import { db } from '../knex.js';

/** The session's latest message from its agent. */
export async function lastAgentMessage(sessionId: string): Promise<EventRow | undefined> {
  return db('session_events').where({ session_id: sessionId, event_type: 'message', event_source: 'agent' }).orderBy('event_index', 'desc').first();
}

/** The session's first message from its user (the one it was created with). */
export async function firstUserMessage(sessionId: string): Promise<EventRow | undefined> {
  return db('session_events').where({ session_id: sessionId, event_type: 'message', event_source: 'user' }).orderBy('event_index').first();
}

/** The session's events from `fromIndex` on, in order. */
export async function from(sessionId: string, fromIndex: number): Promise<EventRow[]> {
  return db('session_events').where({ session_id: sessionId }).andWhere('event_index', '>=', fromIndex).orderBy('event_index');
}
