/**
 * SIGKILL a worker at random moments, N times, with two workers running a steady load. The
 * killed worker is replaced at once, so there are always two (one while the new one boots).
 * A session the victim held is taken over by the other worker once its BullMQ lock lapses
 * (TROUPE_JOB_LOCK_MS=2000) and carries on from its durable log.
 */
import { newProject, q } from '../client.js';
import { sleep, type Cluster } from '../cluster.js';
import { applyStreams, applyTally, Load, loadAgents, stopIdle, verifyAll } from '../load.js';
import { emptyResult, type FaultResult } from '../report.js';

export async function workerKills(c: Cluster, token: string, opts: { kills: number; inFlight: number; drainMs: number }): Promise<FaultResult> {
  const r = emptyResult(`SIGKILL a worker (x${opts.kills}, 2 workers, steady load)`);
  const t0 = Date.now();
  await c.ensureWorkers(2);
  const projectId = await newProject(c.url, token);
  const agents = await loadAgents(c.url, token, projectId);
  const load = new Load(c.url, token, projectId, agents, opts.inFlight, { sse: true });
  load.start();
  const affected = new Set<string>();
  const kills: Array<{ at_ms: number; worker: string; held: number; takeover_ms?: number | null; replacement_boot_ms?: number }> = [];
  const takeovers: Promise<void>[] = [];
  try {
    // Warm up: the load is running on both workers.
    for (let i = 0; i < 100; i++) {
      const running = await q((k) => k('sessions').where({ project_id: projectId, status: 'running' }).count<{ count: string }[]>('* as count'));
      if (Number(running[0].count) >= Math.min(4, opts.inFlight)) break;
      await sleep(200);
    }
    for (let i = 0; i < opts.kills; i++) {
      await sleep(300 + Math.random() * 2700);
      // A random worker among those holding sessions right now (any, if none does).
      const live = c.liveWorkers();
      const holding = await q((k) => k('sessions').where({ project_id: projectId, status: 'running' }).whereIn('worker_id', live.map((w) => w.workerId!)).distinct('worker_id'));
      const candidates = live.filter((w) => holding.some((h: { worker_id: string }) => h.worker_id === w.workerId));
      const victim = (candidates.length ? candidates : live)[Math.floor(Math.random() * (candidates.length || live.length))];
      const held: string[] = await q((k) => k('sessions').where({ project_id: projectId, worker_id: victim.workerId, status: 'running' }).pluck('id'));
      held.forEach((id) => affected.add(id));
      victim.child.kill('SIGKILL');
      await victim.exited;
      const kill: (typeof kills)[number] = { at_ms: Date.now() - t0, worker: victim.workerId!, held: held.length };
      kills.push(kill);
      takeovers.push(takeoverTime(held, victim.workerId!).then((ms) => void (kill.takeover_ms = ms)));
      const b0 = Date.now();
      await c.ensureWorkers(2);
      kill.replacement_boot_ms = Date.now() - b0;
    }
    const stuck = await load.drain(opts.drainMs);
    await Promise.all(takeovers);
    const tally = await verifyAll([...load.tracked.values()], projectId);
    r.runs = kills.length;
    r.affected = affected.size;
    applyTally(r, tally);
    if (stuck.length !== tally.stuck) r.problems.push(`drain saw ${stuck.length} stuck, the log ${tally.stuck}`);
    if (load.createFailures.length) {
      r.ok = false;
      r.problems.push(...load.createFailures.map((f) => `session create failed: ${f}`));
    }
    const times = kills.map((k) => k.takeover_ms).filter((x): x is number => typeof x === 'number');
    const streams = await load.streamVerdict();
    r.details = {
      kills, create_retries: load.createRetries,
      takeover_ms: { max: times.length ? Math.max(...times) : null, mean: times.length ? Math.round(times.reduce((a, b) => a + b, 0) / times.length) : null },
    };
    applyStreams(r, streams);
    await stopIdle(c.url, token, projectId, [...load.tracked.values()]);
  } finally {
    await load.stop();
    load.closeStreams();
    r.seconds = (Date.now() - t0) / 1000;
  }
  return r;
}

/** Time until every session the victim held is claimed by someone else or at rest (null: never, within 60 s). */
async function takeoverTime(ids: string[], victim: string): Promise<number | null> {
  const t0 = Date.now();
  if (!ids.length) return 0;
  while (Date.now() - t0 < 60_000) {
    const rows = await q((k) => k('sessions').whereIn('id', ids).select('worker_id', 'status')).catch(() => null);
    if (rows && rows.every((s) => s.worker_id !== victim || !['running', 'queued'].includes(s.status))) return Date.now() - t0;
    await sleep(100);
  }
  return null;
}
