/**
 * Extension point: features built on sessions (chat sessions, tasks, pair sessions) react to what
 * a session records here, instead of the actor knowing about each of them. Listeners run after
 * the events are committed, in whichever process wrote them (api or worker), and must be
 * idempotent and quick; a listener's failure is logged, never propagated to the writer.
 */
import type { EventRow, SessionRow } from '../db/session-store.js';
import { log } from '../log.js';

export type SessionListener = (session: SessionRow, events: EventRow[]) => Promise<void> | void;

const listeners: SessionListener[] = [];

export function onSessionEvents(fn: SessionListener): void {
  listeners.push(fn);
}

export async function runSessionHooks(session: SessionRow, events: EventRow[]): Promise<void> {
  for (const fn of listeners) {
    try {
      await fn(session, events);
    } catch (err) {
      log.error({ err, session: session.id }, 'session hook failed');
    }
  }
}
