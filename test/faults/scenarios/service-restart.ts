/**
 * Restart a service the runtime depends on (Redis, Postgres) in the middle of a steady load:
 * first an immediate restart, then one that stays down for a few seconds. Sessions must reach a
 * normal end once the service is back, or fail with a clear reason; none may hang. A process that
 * dies of it is reported and started again (as a supervisor would), so the load can go on.
 */
import { newProject, q } from '../client.js';
import { sleep, type Cluster } from '../cluster.js';
import { applyStreams, applyTally, Load, loadAgents, stopIdle, verifyAll } from '../load.js';
import { emptyResult, type FaultResult } from '../report.js';

export interface ServiceFault {
  name: string;
  restart: (downMs: number) => Promise<{ downFor: number }>;
  downs: number[];
}

export async function restartUnderLoad(c: Cluster, token: string, fault: ServiceFault, opts: { inFlight: number; drainMs: number; settleMs?: number }): Promise<FaultResult> {
  const r = emptyResult(fault.name);
  const t0 = Date.now();
  await c.ensureWorkers(2);
  const projectId = await newProject(c.url, token);
  const agents = await loadAgents(c.url, token, projectId);
  const load = new Load(c.url, token, projectId, agents, opts.inFlight, { sse: true });
  const runs: Record<string, unknown>[] = [];
  const affected = new Set<string>();
  load.start();
  try {
    await sleep(5000);
    for (const downMs of fault.downs) {
      // Sessions in flight when the service goes away.
      const hit = [...load.active()].map((s) => s.id);
      hit.forEach((id) => affected.add(id));
      const { downFor } = await fault.restart(downMs);
      const died = [c.api!, ...c.workers].filter((p) => !p.alive()).map((p) => `${p.name} (exit ${p.child.exitCode ?? p.child.signalCode})`);
      if (died.length) {
        r.ok = false;
        r.problems.push(`${fault.name} (down ${downMs} ms): process(es) died: ${died.join(', ')}`);
        if (!c.api!.alive()) await c.startApi();
        await c.ensureWorkers(2);
      }
      runs.push({ down_ms: downMs, service_down_ms: downFor, sessions_in_flight: hit.length, processes_died: died });
      r.runs++;
      await sleep(opts.settleMs ?? 8000);
    }
    const stuck = await load.drain(opts.drainMs);
    const tally = await verifyAll([...load.tracked.values()], projectId);
    r.affected = affected.size;
    applyTally(r, tally);
    if (stuck.length !== tally.stuck) r.problems.push(`drain saw ${stuck.length} stuck, the log ${tally.stuck}`);
    if (load.createFailures.length) {
      r.ok = false;
      r.problems.push(...load.createFailures.map((f) => `session create failed: ${f}`));
    }
    // Stuck sessions: what they were doing, for the report.
    const stuckRows = tally.verdicts.filter((v) => v.stuck).map((v) => v.id);
    const stuckInfo = stuckRows.length
      ? await q((k) => k('sessions').whereIn('id', stuckRows).select('id', 'status', 'worker_id', 'activation', 'next_event_index', 'updated_at'))
      : [];
    const streams = await load.streamVerdict();
    r.details = { runs, create_retries: load.createRetries, stuck_sessions: stuckInfo };
    applyStreams(r, streams);
    await stopIdle(c.url, token, projectId, [...load.tracked.values()]);
  } finally {
    await load.stop();
    load.closeStreams();
    r.seconds = (Date.now() - t0) / 1000;
  }
  return r;
}
