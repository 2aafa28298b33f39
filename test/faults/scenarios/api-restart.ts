/**
 * Restart the api process (SIGTERM: graceful; SIGKILL: crash) while SSE and Socket.IO clients
 * are attached to it and sessions are streaming. The clients reconnect to the new process on the
 * same port and resume: for SSE, the union of durable ids received across reconnects must be
 * exactly the log (Last-Event-ID); for Socket.IO, what was delivered live plus what the client
 * backfilled from REST after reconnecting must be the log, and nothing delivered twice.
 */
import { newAgent, newProject, postOnce, q } from '../client.js';
import { sleep, type Cluster } from '../cluster.js';
import { applyTally, expectationOf, loadScript, stopIdle, verifyAll, waitRest, type Ending, type Tracked } from '../load.js';
import { emptyResult, type FaultResult } from '../report.js';
import { ioClient, sseClient, type IoClient, type SseClient } from '../streams.js';

// About 20 s a session, so streams are still live after a graceful shutdown (which has been seen
// to take the whole TROUPE_SHUTDOWN_TIMEOUT_MS) and the new process's boot.
const SLOW_STEPS = [
  'echo one; sleep 2; echo one-done',
  'for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.4; done',
  'sleep 2; echo three',
  'for i in 1 2 3; do echo tock $i; sleep 0.7; done',
  'sleep 2.5; echo five',
  'echo six; sleep 2',
  'sleep 2.5; echo seven',
  'echo eight; sleep 2',
];

export async function apiRestarts(c: Cluster, token: string, opts: { drainMs: number; sessions?: number }): Promise<FaultResult> {
  const r = emptyResult('Restart the api (SIGTERM, SIGKILL) with SSE + Socket.IO attached');
  const t0 = Date.now();
  const nSessions = opts.sessions ?? 6;
  const all: Tracked[] = [];
  const runs: Record<string, unknown>[] = [];
  let projectId: string;
  try {
    await c.ensureWorkers(2);
    projectId = await newProject(c.url, token);
    const agents: Array<{ id: string; expect: Tracked['expect'] }> = [];
    for (const ending of ['finish', 'idle'] as Ending[]) {
      const script = loadScript(ending, 40, SLOW_STEPS);
      const a = await newAgent(c.url, token, projectId, { script });
      agents.push({ id: a.id, expect: expectationOf(script, ending) });
    }
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const mine: Tracked[] = [];
      const dashboards: IoClient[] = [ioClient(c.url, token, projectId, () => mine.map((s) => s.id)), ioClient(c.url, token, projectId, () => mine.map((s) => s.id))];
      await waitUntil(() => dashboards.every((d) => d.connects > 0), 10_000, 'Socket.IO clients connected');
      await sleep(300); // their subscriptions are acknowledged
      const streams: SseClient[] = [];
      for (let i = 0; i < nSessions; i++) {
        const agent = agents[i % agents.length];
        const res = await postOnce(c.url, '/api/v1/sessions', token, { agent_id: agent.id, project_id: projectId, message: 'Go.' });
        if (res.res?.status !== 201) throw new Error(`session create failed: ${res.res?.text ?? res.errors.at(-1)}`);
        const t: Tracked = { id: res.res.body.id, agentId: agent.id, expect: agent.expect, createdAt: Date.now() };
        mine.push(t);
        all.push(t);
        streams.push(sseClient(c.url, t.id, token), sseClient(c.url, t.id, token));
      }
      // Restart once every stream is under way (a few durable events in).
      await waitUntil(() => streams.every((s) => s.ids.length >= 3), 20_000, 'streams under way');
      const before = streams.reduce((n, s) => n + s.ids.length, 0);
      const endedEarly = new Set(streams.filter((s) => s.ended));
      const { downFor, exitCode, exitMs } = await c.restartApi(signal, 500);
      if (signal === 'SIGTERM' && (exitCode !== 0 || exitMs > 5000)) {
        r.ok = false;
        r.problems.push(`graceful shutdown: the api took ${exitMs} ms to exit on SIGTERM, with exit code ${exitCode} (expected 0, promptly)`);
      }
      const stuck = await waitRest(mine, opts.drainMs);
      // Give the clients time to receive the last events over their new connections.
      const logs = new Map<string, number>();
      for (const s of mine) logs.set(s.id, (await q((k) => k('sessions').where({ id: s.id }).first('next_event_index'))).next_event_index);
      await waitUntil(() => streams.every((s) => new Set(s.ids).size >= logs.get(s.sessionId)!)
        && dashboards.every((d) => mine.every((s) => union(d, s.id).size >= logs.get(s.id)!)), 20_000, 'clients caught up').catch(() => {});
      await sleep(500); // anything still to come would be a duplicate
      for (const s of streams) s.close();
      for (const d of dashboards) d.close();

      let lost = 0;
      let duplicated = 0;
      const sse = streams.map((s) => {
        const n = logs.get(s.sessionId)!;
        const got = new Set(s.ids);
        const missing = range(n).filter((i) => !got.has(i));
        const extra = s.ids.length - got.size;
        const foreign = [...got].filter((i) => i >= n || i < 0).length;
        lost += missing.length;
        duplicated += extra + foreign;
        if (missing.length || extra) r.problems.push(`SSE ${s.sessionId.slice(0, 8)} (${signal}): missing ${missing.join(',') || '-'}; ${extra} repeated`);
        return { session: s.sessionId.slice(0, 8), received: s.ids.length, log: n, reconnected: s.opens >= 2 || endedEarly.has(s), opens: s.opens, errors: s.errors };
      });
      const io = dashboards.map((d) => {
        let dLost = 0;
        let dDup = 0;
        let viaBackfill = 0;
        for (const s of mine) {
          const n = logs.get(s.id)!;
          const live = d.live.get(s.id) ?? [];
          const u = union(d, s.id);
          const missing = range(n).filter((i) => !u.has(i));
          dLost += missing.length;
          dDup += live.length - new Set(live).size;
          viaBackfill += [...(d.backfilled.get(s.id) ?? [])].filter((i) => !live.includes(i)).length;
          if (missing.length) r.problems.push(`Socket.IO (${signal}) ${s.id.slice(0, 8)}: missing ${missing.join(',')}`);
        }
        lost += dLost;
        duplicated += dDup;
        if (d.subscribeErrors.length) r.problems.push(`Socket.IO subscribe errors: ${d.subscribeErrors.join('; ')}`);
        return { connects: d.connects, reconnected: d.connects >= 2, lost: dLost, duplicated: dDup, recovered_from_rest: viaBackfill };
      });
      const notReconnected = sse.filter((s) => !s.reconnected).length + io.filter((d) => !d.reconnected).length;
      if (notReconnected) {
        r.ok = false;
        r.problems.push(`${notReconnected} client(s) (${signal}) never reconnected`);
      }
      if (stuck.length) r.problems.push(`${stuck.length} session(s) not at rest after the ${signal} restart`);
      r.lost += lost;
      r.duplicated += duplicated;
      r.affected += mine.length;
      r.runs++;
      runs.push({ signal, api_down_ms: downFor, api_exit_ms: exitMs, api_exit_code: exitCode, durable_events_before_restart: before, sse_clients: sse.length, sse_reconnected: sse.filter((s) => s.reconnected).length, socketio: io, stream_lost: lost, stream_duplicated: duplicated });
    }
    const clients = runs.reduce((n: number, x: any) => n + x.sse_clients, 0);
    const ios = runs.reduce((n: number, x: any) => n + x.socketio.length, 0);
    r.affectedLabel = `${r.affected} of ${all.length} (${clients} SSE + ${ios} Socket.IO clients)`;
    const tally = await verifyAll(all, projectId);
    applyTally(r, tally);
    r.details = { runs };
    await stopIdle(c.url, token, projectId, all);
  } finally {
    r.seconds = (Date.now() - t0) / 1000;
  }
  return r;
}

function union(d: IoClient, sessionId: string): Set<number> {
  return new Set([...(d.live.get(sessionId) ?? []), ...(d.backfilled.get(sessionId) ?? [])]);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function waitUntil(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
