/**
 * Postgres drops the api's connection at the worst moment of a session create: after the session
 * row is committed, while its first events (the "created" status and the user's message) are
 * being written. A Postgres restart does this by chance (the restart fault has hit it); here it is
 * made certain, on the suite's own database only (nothing shared is restarted):
 *
 *   1. a table lock holds every insert into session_events;
 *   2. POST /api/v1/sessions (with an Idempotency-Key) blocks on it, after its first transaction;
 *   3. its Postgres backend is terminated (as a restart or failover would), the lock released.
 *   Variant "cleanup too": the backend that then tries to release the Idempotency-Key is
 *   terminated as well (Postgres still unreachable for it).
 *
 * The client retries with the same key. Exactly one session must come of each request, with its
 * full log, at a normal end; the retry must not be refused forever.
 */
import pg from 'pg';
import { newProject, postOnce, q } from '../client.js';
import { FAULTS_DB_URL } from '../env.js';
import { sleep, type Cluster } from '../cluster.js';
import { applyTally, loadAgents, stopIdle, verifyAll, waitRest, type Tracked } from '../load.js';
import { emptyResult, type FaultResult } from '../report.js';

// Backends waiting for the locker's locks. Asked on a connection of its own, outside any
// transaction: pg_stat_activity is a snapshot frozen for the length of a transaction. (Not matched
// on the query text: with the extended protocol a statement takes its locks while being parsed,
// before pg_stat_activity shows it.)
const BLOCKED_BY = `select pid from pg_stat_activity where datname = current_database() and $1::int = any(pg_blocking_pids(pid))`;

export async function pgMidCreate(c: Cluster, token: string, opts: { drainMs: number }): Promise<FaultResult> {
  const r = emptyResult('Postgres drops the api connection mid-create (targeted)');
  const t0 = Date.now();
  await c.ensureWorkers(2);
  const projectId = await newProject(c.url, token);
  const [agent] = await loadAgents(c.url, token, projectId);
  const tracked: Tracked[] = [];
  const runs: Record<string, unknown>[] = [];
  const variants = ['events', 'events', 'events', 'events+cleanup'] as const;
  try {
    for (const variant of variants) {
      const locker = new pg.Client({ connectionString: FAULTS_DB_URL });
      const monitor = new pg.Client({ connectionString: FAULTS_DB_URL });
      await locker.connect();
      await monitor.connect();
      const lockerPid = (await locker.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const run: Record<string, unknown> = { variant };
      runs.push(run);
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await locker.query('rollback').catch(() => {});
        await locker.end().catch(() => {});
        await monitor.end().catch(() => {});
      };
      try {
        await locker.query('begin');
        await locker.query('lock table session_events in share row exclusive mode');
        // A patient client: it keeps retrying for well over a minute (a key left pending by a dead
        // attempt may be held that long).
        const creating = postOnce(c.url, '/api/v1/sessions', token, { agent_id: agent.id, project_id: projectId, message: 'Run your steps.' }, variant === 'events' ? 30_000 : 80_000);
        const blocked = await until(async () => (await monitor.query(BLOCKED_BY, [lockerPid])).rows.map((x) => x.pid as number), 10_000);
        run.create_blocked = blocked.length > 0;
        if (!blocked.length) {
          r.ok = false;
          r.problems.push(`${variant}: the create was never seen waiting on the lock (fault not injected)`);
        }
        if (variant === 'events+cleanup') await locker.query('lock table idempotency_keys in access exclusive mode');
        for (const pid of blocked) await monitor.query('select pg_terminate_backend($1)', [pid]);
        if (variant === 'events+cleanup') {
          // The api now tries to release the key: that connection goes too.
          const cleanup = await until(async () => (await monitor.query(BLOCKED_BY, [lockerPid])).rows.map((x) => x.pid as number).filter((pid) => !blocked.includes(pid)), 5000);
          run.cleanup_blocked = cleanup.length > 0;
          for (const pid of cleanup) await monitor.query('select pg_terminate_backend($1)', [pid]);
        }
        await sleep(200);
        await release();
        const res = await creating;
        run.attempts = res.attempts;
        run.first_errors = res.errors.slice(0, 2);
        if (res.res?.status === 201) {
          tracked.push({ id: res.res.body.id, agentId: agent.id, expect: agent.expect, createdAt: Date.now() });
          run.created = res.res.body.id;
        } else {
          run.created = null;
          r.stuck++; // the client can never get its session: as good as stuck
          r.problems.push(`${variant}: the create never succeeded (${res.attempts} attempts): ${res.res ? `${res.res.status} ${res.res.text.slice(0, 160)}` : res.errors.at(-1)}`);
        }
      } finally {
        await release();
      }
      r.runs++;
      r.affected++;
    }
    // Sessions that no request asked for (half-created ones) are counted whatever their state.
    await waitRest(tracked, opts.drainMs);
    await sleep(1000);
    r.affectedLabel = `${r.runs} creates, ${tracked.length} sessions`;
    const tally = await verifyAll(tracked, projectId);
    applyTally(r, tally);
    const all = await q((k) => k('sessions').where({ project_id: projectId }).select('id', 'status', 'next_event_index'));
    r.details = { runs, sessions_in_project: all };
    await stopIdle(c.url, token, projectId, all);
  } finally {
    r.seconds = (Date.now() - t0) / 1000;
  }
  return r;
}

async function until<T>(fn: () => Promise<T[]>, timeoutMs: number): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v.length || Date.now() > deadline) return v;
    await sleep(25);
  }
}

