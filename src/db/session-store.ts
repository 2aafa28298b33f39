/**
 * Sessions and their durable events. Every status change is a compare-and-set under the session's
 * row lock, and every event append takes its event_index from the row's counter in the same
 * transaction, so indexes stay dense and ordered whoever writes (api or worker). It only
 * persists: who hears about a write is the event pipeline's business (src/pipeline/).
 *
 * `activation` is a fencing token: a worker claims a session by bumping it, and control actions
 * (pause, stop, interrupt) bump it too. A worker passes the activation it claimed with each write;
 * once someone else has bumped it, the write is refused and the worker stands down.
 */
import { db, type Tx } from './knex.js';
import { ports } from '../domain/ports.js';
import { ACTIVE, TERMINAL, type EventRow, type NewEvent, type SessionCommit, type SessionRow, type SessionStatus } from '../domain/sessions.js';

export { ACTIVE, TERMINAL } from '../domain/sessions.js';
export type { EventRow, EventSource, EventType, NewEvent, SessionRow, SessionStatus } from '../domain/sessions.js';

export interface WriteOptions {
  /** Refuse (return null) unless the session is in one of these statuses. */
  from?: readonly SessionStatus[];
  /** Refuse unless the session's activation still equals this (the writer's fencing token). */
  activation?: number;
  /** New status; a `status` event is appended for it. */
  to?: SessionStatus;
  reason?: string;
  /** Extra fields for the status event's payload. */
  statusExtra?: Record<string, unknown>;
  /** Bump the fencing token, so whoever was driving the session can no longer write. */
  bumpActivation?: boolean;
  /** Extra columns to set on the session row. */
  patch?: Record<string, unknown>;
  /** Keys merged into the session's `data` (seed 001's PATCH). */
  mergeData?: Record<string, unknown>;
  /** A worker's claim: records who drives it, and when it first started. */
  claimedBy?: string;
  /** One more model turn against max_iterations. */
  countIteration?: boolean;
  /** Refuse unless no event was appended since the writer read `expectNextIndex` events. */
  expectNextIndex?: number;
  /** A message wakes an idle session: idle → queued (with a new activation for its job). */
  wakeIfIdle?: boolean;
  /** Runs inside the transaction after the checks pass (e.g. to write a second table). */
  also?: (tx: Tx, session: SessionRow) => Promise<void>;
  /**
   * Runs inside the transaction once the checks pass and before anything is written, with the
   * row as it is and the status it is about to get; throwing aborts the write (e.g. a quota).
   */
  guard?: (tx: Tx, current: SessionRow, to: SessionStatus | undefined) => Promise<void>;
}

export type WriteResult = SessionCommit;

/**
 * The one write path for sessions: checks, status change, patch and events in one transaction;
 * after commit, hands what it wrote to the event pipeline (which publishes it and tells the
 * feature listeners, never inside this call stack). Returns null when a check refuses the write.
 */
export async function writeSession(sessionId: string, events: NewEvent[], opts: WriteOptions = {}): Promise<WriteResult | null> {
  const result = await db.transaction(async (tx) => {
    const s = (await tx('sessions').where({ id: sessionId }).forUpdate().first()) as SessionRow | undefined;
    if (!s) return null;
    if (opts.from && !opts.from.includes(s.status)) return null;
    if (opts.activation !== undefined && s.activation !== opts.activation) return null;
    if (opts.expectNextIndex !== undefined && s.next_event_index !== opts.expectNextIndex) return null;
    if (opts.wakeIfIdle && s.status === 'idle') opts = { ...opts, to: 'queued', bumpActivation: true };
    if (opts.guard) await opts.guard(tx, s, opts.to);
    const all: NewEvent[] = [...events];
    const patch: Record<string, unknown> = { ...opts.patch, updated_at: tx.fn.now(), last_active_at: tx.fn.now() };
    if (opts.mergeData) patch.data = tx.raw('data || ?::jsonb', [JSON.stringify(storable(opts.mergeData))]);
    if (opts.claimedBy) Object.assign(patch, { worker_id: opts.claimedBy, started_at: tx.raw('coalesce(started_at, now())') });
    if (opts.countIteration) patch.iteration_count = tx.raw('iteration_count + 1');
    if (opts.to && opts.to !== s.status) {
      all.push({
        event_type: 'status',
        event_source: 'system',
        payload: { status: opts.to, previous_status: s.status, ...(opts.reason ? { reason: opts.reason } : {}), ...opts.statusExtra },
      });
      patch.status = opts.to;
      if (TERMINAL.includes(opts.to)) patch.finished_at = tx.fn.now();
      if (opts.to === 'failed' && opts.reason) patch.error = opts.reason;
    }
    if (opts.bumpActivation) patch.activation = s.activation + 1;
    let rows: EventRow[] = [];
    if (all.length) {
      rows = await tx('session_events')
        .insert(all.map((e, i) => ({
          session_id: s.id, project_id: s.project_id, event_index: s.next_event_index + i,
          event_type: e.event_type, event_source: e.event_source, payload: JSON.stringify(storable(e.payload)),
        })))
        .returning('*');
      patch.next_event_index = s.next_event_index + all.length;
    }
    const [updated] = await tx('sessions').where({ id: s.id }).update(patch).returning('*');
    if (opts.also) await opts.also(tx, updated);
    return { session: updated as SessionRow, events: rows.sort((a, b) => a.event_index - b.event_index), previousStatus: s.status };
  });
  if (result?.events.length) await ports().events.sessionCommitted(result);
  return result;
}

export type NewSession = Pick<SessionRow,
  'id' | 'project_id' | 'agent_id' | 'sandbox_id' | 'created_by_member_id' | 'trigger_type' | 'task_id' | 'task_title' |
  'chat_session_id' | 'prompt' | 'idempotency_key' | 'metadata' | 'data'> & Partial<Pick<SessionRow, 'repository_id' | 'base_branch'>>;

/** A new session row, queued, with no events yet (createSession writes its first ones). */
export async function insertSession(tx: Tx, row: NewSession): Promise<void> {
  await tx('sessions').insert({ ...row, status: 'queued', metadata: JSON.stringify(row.metadata), data: JSON.stringify(row.data) });
}

/** The session a member created with this Idempotency-Key, if any. */
export async function sessionByIdempotencyKey(projectId: string, memberId: string, key: string): Promise<SessionRow | undefined> {
  return db('sessions').where({ project_id: projectId, created_by_member_id: memberId, idempotency_key: key }).first();
}

/** Only within these projects (another project's session is not found). */
export async function sessionInProjects(projectIds: string[], id: string): Promise<SessionRow | undefined> {
  return db('sessions').where({ id }).whereIn('project_id', projectIds).first();
}

export async function activeSessionsOfAgent(agentId: string): Promise<SessionRow[]> {
  return db('sessions').where({ agent_id: agentId }).whereIn('status', ACTIVE as SessionStatus[]).select('*');
}

/** Idle sessions untouched for `seconds` (the reaper pauses them), most recent first. */
export async function idleLongerThan(seconds: number, limit: number): Promise<SessionRow[]> {
  return db('sessions').where({ status: 'idle' })
    .andWhere('last_active_at', '<', db.raw('now() - make_interval(secs => ?)', [seconds]))
    .orderBy('last_active_at', 'desc').limit(limit);
}

/** Queued sessions whose creation finished but which nothing has picked up for `seconds`. */
export async function queuedWithoutProgress(seconds: number, limit: number): Promise<Array<Pick<SessionRow, 'id' | 'activation'>>> {
  return db('sessions').where({ status: 'queued' }).andWhere('next_event_index', '>', 0)
    .andWhere('updated_at', '<', db.raw('now() - make_interval(secs => ?)', [seconds])).limit(limit).select('id', 'activation');
}

/** Sessions whose creation stopped before their first event, `seconds` ago or more. */
export async function creationsAbandoned(seconds: number, limit: number): Promise<Array<Pick<SessionRow, 'id'>>> {
  return db('sessions').where({ status: 'queued', next_event_index: 0 })
    .andWhere('created_at', '<', db.raw('now() - make_interval(secs => ?)', [seconds])).limit(limit).select('id');
}

/** Removes a session and its event log (seed 001's DELETE; the session is stopped first). */
export async function removeSession(id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx('session_events').where({ session_id: id }).del();
    await tx('sessions').where({ id }).del();
  });
}

// eslint-disable-next-line no-control-regex -- NUL is exactly what Postgres refuses
const NUL = /\u0000/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Postgres jsonb refuses NUL characters and unpaired surrogates, and a sandbox may print either:
 * they are replaced (␀, U+FFFD) rather than failing the write (and the session) over a byte.
 */
export function storable<T>(value: T): T {
  if (typeof value === 'string') return value.replace(NUL, '\u2400').replace(LONE_SURROGATE, '\ufffd') as T;
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[storable(k)] = storable(v);
    return out as T;
  }
  return value;
}

export async function sessionsIn(sandboxId: string): Promise<SessionRow[]> {
  return db('sessions').where({ sandbox_id: sandboxId }).orderBy('created_at');
}

export async function getSession(id: string): Promise<SessionRow | undefined> {
  return db('sessions').where({ id }).first();
}

/** The session's latest status event (what state its log says it is in). */
export async function lastStatusEvent(sessionId: string): Promise<EventRow | undefined> {
  return db('session_events').where({ session_id: sessionId, event_type: 'status' }).orderBy('event_index', 'desc').first();
}

/**
 * Up to `limit` events before `before` (exclusive; undefined: the newest), newest first, optionally
 * of some types only: for reading a long log backwards a page at a time.
 */
export async function loadEventsBefore(sessionId: string, before: number | undefined, limit: number, types?: EventRow['event_type'][]): Promise<EventRow[]> {
  const q = db('session_events').where({ session_id: sessionId }).orderBy('event_index', 'desc').limit(limit);
  if (before !== undefined) q.andWhere('event_index', '<', before);
  if (types) q.whereIn('event_type', types);
  return q;
}

export async function loadEvents(sessionId: string, opts: { after?: number; limit?: number; offset?: number } = {}): Promise<EventRow[]> {
  const q = db('session_events').where({ session_id: sessionId }).orderBy('event_index');
  if (opts.after !== undefined) q.andWhere('event_index', '>', opts.after);
  if (opts.limit !== undefined) q.limit(opts.limit);
  if (opts.offset) q.offset(opts.offset);
  return q;
}
