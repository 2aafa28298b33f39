/**
 * The hosts table and the cluster's questions about sandboxes and sessions (issue 13): which
 * worker hosts are alive, where a new sandbox goes (least loaded live host with room, decided
 * under one Postgres advisory lock so two api replicas cannot overfill a host), which sandboxes
 * sat on a host that died, which sessions wait for room. Every statement is a compare-and-set or
 * idempotent, so any number of workers may run the same sweep at once.
 */
import { db, type Db } from '../knex.js';

export type HostState = 'live' | 'draining' | 'dead';

export interface HostRow {
  id: string;
  engine: string;
  capacity: number;
  state: HostState;
  heartbeat_at: Date;
  started_at: Date;
  state_changed_at: Date;
}

export interface HostView extends HostRow {
  heartbeat_age_seconds: number;
  sandboxes: { active: number; paused: number };
}

/** One lock for every placement decision (hashtext of a fixed name). */
const PLACEMENT_LOCK = "hashtext('troupe-host-placement')";

/**
 * Registers (or re-registers) a host as live; returns the state it had before, if it existed.
 * `engineOk` false: registered without a heartbeat, so nothing is placed on it until its engine answers.
 */
export async function register(h: { id: string; engine: string; capacity: number }, engineOk = true): Promise<HostState | null> {
  return db.transaction(async (tx) => {
    const before = (await tx('hosts').where({ id: h.id }).forUpdate().first('state')) as { state: HostState } | undefined;
    const beat = engineOk ? tx.fn.now() : tx.raw("'epoch'::timestamptz");
    await tx('hosts')
      .insert({ ...h, state: 'live', heartbeat_at: beat, started_at: tx.fn.now(), state_changed_at: tx.fn.now() })
      .onConflict('id')
      .merge({ engine: h.engine, capacity: h.capacity, state: 'live', heartbeat_at: beat, started_at: tx.fn.now(), state_changed_at: tx.fn.now() });
    return before?.state ?? null;
  });
}

/** A heartbeat; null when the host was declared dead meanwhile (then it must clean up and re-register). */
export async function beat(id: string): Promise<HostState | null> {
  const rows = await db('hosts').where({ id }).whereNot({ state: 'dead' }).update({ heartbeat_at: db.fn.now() }).returning('state');
  return (rows[0] as { state: HostState } | undefined)?.state ?? null;
}

export async function byId(id: string): Promise<HostRow | undefined> {
  return db('hosts').where({ id }).first();
}

/** Compare-and-set of a host's state. */
export async function setState(id: string, to: HostState, from: HostState[]): Promise<boolean> {
  const n = await db('hosts').where({ id }).whereIn('state', from).update({ state: to, state_changed_at: db.fn.now() });
  return n > 0;
}

/** Every host with its load and heartbeat age (the admin view). */
export async function list(): Promise<HostView[]> {
  const rows = await db('hosts as h')
    .leftJoin('sandboxes as sb', 'sb.host_id', 'h.id')
    .groupBy('h.id')
    .orderBy('h.id')
    .select('h.*')
    .select(db.raw('extract(epoch from now() - h.heartbeat_at)::float as heartbeat_age_seconds'))
    .select(db.raw("count(sb.id) filter (where sb.state = 'active')::int as active"))
    .select(db.raw("count(sb.id) filter (where sb.state = 'paused')::int as paused"));
  return rows.map((r: HostRow & { heartbeat_age_seconds: number; active: number; paused: number }) => {
    const { active, paused, ...rest } = r;
    return { ...rest, sandboxes: { active, paused } };
  });
}

/**
 * Declares dead every live or draining host silent for `deadSeconds` (never `self`: a host whose
 * own engine is away waits for it rather than give its sandboxes up); returns the ids this call declared.
 */
export async function claimDead(deadSeconds: number, self: string): Promise<string[]> {
  const rows = await db('hosts')
    .whereIn('state', ['live', 'draining'])
    .whereNot({ id: self })
    .andWhere('heartbeat_at', '<', db.raw('now() - make_interval(secs => ?)', [deadSeconds]))
    .update({ state: 'dead', state_changed_at: db.fn.now() })
    .returning('id');
  return rows.map((r: { id: string }) => r.id);
}

/**
 * Places a sandbox: keeps the host it has when that host is live (or draining: it still serves
 * what it holds), else picks the least loaded live host with room (other than `exclude`) and
 * records it. Null: no live host has room. `force`: pick anew even if it has a host (a move).
 */
export async function place(sandboxId: string, deadSeconds: number, opts: { exclude?: string } = {}): Promise<string | null> {
  // The common case, without the lock: the sandbox is on a host that still serves it.
  if (!opts.exclude) {
    const now = await sandboxHost(sandboxId);
    if (now?.host_id && now.host_state && now.host_state !== 'dead') return now.host_id;
  }
  return db.transaction(async (tx) => {
    await tx.raw(`select pg_advisory_xact_lock(${PLACEMENT_LOCK})`);
    const sb = (await tx('sandboxes').where({ id: sandboxId }).first('host_id', 'state')) as { host_id: string | null; state: string } | undefined;
    if (!sb) return null;
    if (sb.host_id && !opts.exclude) {
      const h = (await tx('hosts').where({ id: sb.host_id }).first('state')) as { state: HostState } | undefined;
      if (h && h.state !== 'dead') return sb.host_id;
    }
    const chosen = await leastLoaded(tx, deadSeconds, opts.exclude);
    if (!chosen) return null;
    if (!opts.exclude) await tx('sandboxes').where({ id: sandboxId }).update({ host_id: chosen });
    return chosen;
  });
}

async function leastLoaded(conn: Db, deadSeconds: number, exclude?: string): Promise<string | null> {
  const q = conn('hosts as h')
    .leftJoin('sandboxes as sb', function () {
      this.on('sb.host_id', '=', 'h.id').andOnVal('sb.state', '<>', 'stopped');
    })
    .where('h.state', 'live')
    .andWhere('h.heartbeat_at', '>', conn.raw('now() - make_interval(secs => ?)', [deadSeconds]))
    .groupBy('h.id', 'h.capacity')
    .havingRaw('count(sb.id) < h.capacity')
    .orderByRaw('count(sb.id), h.id')
    .first('h.id');
  if (exclude) q.andWhereNot('h.id', exclude);
  const row = (await q) as { id: string } | undefined;
  return row?.id ?? null;
}

/** Whether any live host has room for one more sandbox. */
export async function anyRoom(deadSeconds: number): Promise<boolean> {
  return !!(await leastLoaded(db, deadSeconds));
}

/** Sandboxes (not stopped) whose host has been declared dead. */
export async function sandboxesOnDeadHosts(limit: number): Promise<Array<{ id: string; host_id: string }>> {
  return db('sandboxes as sb')
    .join('hosts as h', 'h.id', 'sb.host_id')
    .where('h.state', 'dead')
    .whereNot('sb.state', 'stopped')
    .select('sb.id', 'sb.host_id')
    .limit(limit);
}

/** Takes a sandbox off a host (compare-and-set on the host it had); its container_id is kept, as the record of what was lost. */
export async function unplace(sandboxId: string, fromHost: string): Promise<boolean> {
  return (await db('sandboxes').where({ id: sandboxId, host_id: fromHost }).update({ host_id: null, updated_at: db.fn.now() })) > 0;
}

/** A host's sandboxes (not stopped). */
export async function sandboxesOf(hostId: string): Promise<Array<{ id: string; state: string; container_id: string | null }>> {
  return db('sandboxes').where({ host_id: hostId }).whereNot({ state: 'stopped' }).select('id', 'state', 'container_id');
}

/**
 * Moves a sandbox to another host once its container there holds the files: compare-and-set on
 * the old host, and only while none of its sessions is queued or running.
 */
export async function moveIfQuiet(sandboxId: string, from: string, to: string, containerId: string | null): Promise<boolean> {
  const n = await db('sandboxes')
    .where({ id: sandboxId, host_id: from })
    .whereNotExists(db('sessions').where('sandbox_id', sandboxId).whereIn('status', ['queued', 'running']).select(db.raw('1')))
    .update({ host_id: to, container_id: containerId, updated_at: db.fn.now() });
  return n > 0;
}

/** The sessions working in a sandbox, with their status and activation. */
export async function sessionsOfSandbox(sandboxId: string): Promise<Array<{ id: string; status: string; activation: number }>> {
  return db('sessions').where({ sandbox_id: sandboxId }).select('id', 'status', 'activation');
}

/** The host a session's sandbox is placed on, and the sandbox. */
export async function sandboxOfSession(sessionId: string): Promise<{ sandbox_id: string; host_id: string | null } | undefined> {
  return db('sessions as s').join('sandboxes as sb', 'sb.id', 's.sandbox_id').where('s.id', sessionId).first('s.sandbox_id', 'sb.host_id');
}

/**
 * Queued sessions whose sandbox has no host (waiting for room), oldest first. Only sessions whose
 * creation has finished (first events written): one being created is queued by its creator.
 */
export async function waitingSessions(limit: number): Promise<Array<{ id: string; activation: number; sandbox_id: string; waited_seconds: number }>> {
  return db('sessions as s')
    .join('sandboxes as sb', 'sb.id', 's.sandbox_id')
    .where('s.status', 'queued')
    .andWhere('s.next_event_index', '>', 0)
    .whereNull('sb.host_id')
    .whereNot('sb.state', 'stopped')
    .orderBy('s.updated_at')
    .limit(limit)
    .select('s.id', 's.activation', 's.sandbox_id', db.raw('extract(epoch from now() - s.updated_at)::float as waited_seconds'));
}

export async function waitingCount(): Promise<number> {
  const [{ n }] = await db('sessions as s')
    .join('sandboxes as sb', 'sb.id', 's.sandbox_id')
    .where('s.status', 'queued')
    .andWhere('s.next_event_index', '>', 0)
    .whereNull('sb.host_id')
    .count<{ n: string }[]>('* as n');
  return Number(n);
}

/** Compare-and-set of a sandbox's recorded container: true for the one caller that replaced `from`. */
export async function swapContainer(sandboxId: string, from: string | null, to: string): Promise<boolean> {
  const q = db('sandboxes').where({ id: sandboxId });
  if (from === null) q.whereNull('container_id');
  else q.andWhere({ container_id: from });
  return (await q.update({ container_id: to, updated_at: db.fn.now() })) > 0;
}

/** A sandbox's host and that host's state. */
export async function sandboxHost(sandboxId: string): Promise<{ host_id: string | null; host_state: HostState | null } | undefined> {
  return db('sandboxes as sb').leftJoin('hosts as h', 'h.id', 'sb.host_id').where('sb.id', sandboxId).first('sb.host_id', 'h.state as host_state');
}

/** Whether a session's latest event already says it waits for a host (so a retry does not say it again). */
export async function alreadyWaiting(sessionId: string): Promise<boolean> {
  const last = (await db('session_events').where({ session_id: sessionId }).orderBy('event_index', 'desc').first('payload')) as { payload: Record<string, unknown> } | undefined;
  return Boolean(last?.payload?.waiting_for_host);
}
