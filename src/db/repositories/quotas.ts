/**
 * What the per-project quotas count, and the lock that makes "count, then create" safe: every
 * creation that a quota limits takes the project's quota lock (a transaction-scoped advisory lock)
 * before counting, so two concurrent requests cannot both see room for one more. One lock for both
 * quotas, so a transaction that takes it twice (a session with its own sandbox) cannot deadlock.
 */
import type { Tx } from '../knex.js';
import { TERMINAL } from '../../domain/sessions.js';

/** Holds the project's quota lock until `tx` ends (re-entrant within the transaction). */
export async function lockProject(tx: Tx, projectId: string): Promise<void> {
  await tx.raw("select pg_advisory_xact_lock(hashtextextended('troupe.quota:' || ?, 0))", [projectId]);
}

/** Sandboxes not stopped, leaving out those whose owning session has already ended (the reaper marks them soon). */
export async function liveSandboxes(tx: Tx, projectId: string): Promise<number> {
  const [row] = await tx('sandboxes as sb')
    .leftJoin('sessions as s', 's.id', 'sb.owner_session_id')
    .where('sb.project_id', projectId)
    .whereNot('sb.state', 'stopped')
    .andWhere((w) => w.whereNull('sb.owner_session_id').orWhereNull('s.id').orWhereNotIn('s.status', TERMINAL as string[]))
    .count<{ count: string }[]>('* as count');
  return Number(row.count);
}

/** Sessions waiting for or holding a worker (queued or running). */
export async function busySessions(tx: Tx, projectId: string): Promise<number> {
  const [row] = await tx('sessions').where({ project_id: projectId }).whereIn('status', ['queued', 'running']).count<{ count: string }[]>('* as count');
  return Number(row.count);
}
