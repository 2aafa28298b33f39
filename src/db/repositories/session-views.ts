/**
 * Sessions as the route families show them: the session row plus its sandbox's container id and
 * its message count (one query, not one per session).
 */
import type { SessionRow } from '../../domain/sessions.js';
import { db } from '../knex.js';

/** A session row with what the views add: its sandbox's container id and its message count. */
export type SessionViewRow = SessionRow & { container_id?: string | null; message_count?: number };

/** Sessions (`s`) with their sandbox's container id and their message count; callers add where/order. */
export function sessionQuery() {
  return db('sessions as s')
    .leftJoin('sandboxes as sb', 'sb.id', 's.sandbox_id')
    .select(
      's.*',
      'sb.container_id',
      db.raw(`(select count(*)::int from session_events e where e.session_id = s.id and e.event_type = 'message') as message_count`),
    );
}

export async function viewById(id: string): Promise<SessionViewRow | undefined> {
  return sessionQuery().where('s.id', id).first();
}
