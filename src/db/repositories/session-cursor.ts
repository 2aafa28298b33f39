/**
 * The event pipeline's cursor on each session (sessions.reacted_index): which events every
 * feature listener has handled. Only the pipeline reads or moves it.
 */
import { db } from '../knex.js';

/** Moves the cursor from `from` to `to`; false when someone else moved it first. */
export async function advance(sessionId: string, from: number, to: number): Promise<boolean> {
  return (await db('sessions').where({ id: sessionId, reacted_index: from }).update({ reacted_index: to })) > 0;
}

/**
 * Sessions a feature started (trigger_type other than api) whose listeners are behind and that
 * have not been written for `quietMs`: their pipeline job was lost (a process died between commit
 * and enqueue) or gave up.
 */
export async function lagging(quietMs: number, limit: number): Promise<Array<{ id: string; next_event_index: number }>> {
  return db('sessions')
    .whereNot({ trigger_type: 'api' })
    .andWhereRaw('reacted_index < next_event_index - 1')
    .andWhere('updated_at', '<', new Date(Date.now() - quietMs))
    .orderBy('updated_at')
    .limit(limit)
    .select('id', 'next_event_index');
}
