/**
 * Sessions as the route families show them: the session row plus its sandbox's container id and
 * its message count (one query, not one per session).
 */
import type { SessionRow } from '../../domain/sessions.js';
import { db } from '../knex.js';

/** A session row with what the views add: its sandbox's container id and its message count. */
export type SessionViewRow = SessionRow & { container_id?: string | null; message_count?: number };

/** Sessions (`s`) with their sandbox's container id and their message count. */
function sessionQuery() {
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

export interface SessionViewFilter {
  projectIds?: string[];
  sandboxId?: string;
  /** Sessions of any of these agents (an empty list matches none). */
  agentIds?: string[];
  taskId?: string;
  statuses?: readonly string[];
  order: 'newest' | 'oldest';
  limit: number;
  offset?: number;
  /** Also count every match (for paginated lists). */
  withTotal?: boolean;
  /**
   * Chat conversations the viewer may see (services/session-access.ts): all of them in
   * `seeAllIn` (projects where the viewer is owner or admin), elsewhere only those of chats the
   * viewer's member ids own. Absent: no chat rule (an agent key sees its own agent's sessions).
   */
  chats?: { seeAllIn: string[]; memberIds: string[] };
}

/** The sessions matching a filter, as views; with `withTotal`, how many match in all. */
export async function list(f: SessionViewFilter): Promise<{ rows: SessionViewRow[]; total?: number }> {
  const where = (q: ReturnType<typeof db>, p: string) => {
    if (f.projectIds) q.whereIn(`${p}project_id`, f.projectIds);
    if (f.sandboxId) q.andWhere(`${p}sandbox_id`, f.sandboxId);
    if (f.agentIds) q.whereIn(`${p}agent_id`, f.agentIds);
    if (f.taskId) q.andWhere(`${p}task_id`, f.taskId);
    if (f.statuses) q.whereIn(`${p}status`, f.statuses as string[]);
    const chats = f.chats;
    if (chats) {
      const col = (c: string) => (p ? `${p}${c}` : `sessions.${c}`);
      q.andWhere((w) => {
        w.whereNull(col('chat_session_id'))
          .orWhereIn(col('project_id'), chats.seeAllIn)
          .orWhereExists(db('chat_sessions as cs').whereRaw(`cs.id = ${col('chat_session_id')}`).whereIn('cs.member_id', chats.memberIds).select(db.raw('1')));
      });
    }
    return q;
  };
  const rows: SessionViewRow[] = await where(sessionQuery(), 's.')
    .orderBy('s.created_at', f.order === 'newest' ? 'desc' : 'asc')
    .limit(f.limit)
    .offset(f.offset ?? 0);
  if (!f.withTotal) return { rows };
  const [{ count }] = await where(db('sessions'), '').count<{ count: string }[]>('id as count');
  return { rows, total: Number(count) };
}
