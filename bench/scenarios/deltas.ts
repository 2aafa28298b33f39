/**
 * deltas: S sessions stream text deltas (the scripted model, token_delay_ms chosen so that all
 * sessions together publish about BENCH_DELTA_RATE deltas/s) to SSE clients and Socket.IO
 * clients (each subscribed to one conversation room), spread evenly over the sessions.
 *
 * Where the clients run: in BENCH_DELTA_THREADS worker threads (default 2; bench/lib/
 * delta-clients.ts), not in this thread. Sessions are dealt out to the threads; a thread holds
 * every client of its sessions plus its own bare ioredis subscriber on the same session channels
 * (`<prefix>:session:<id>`). Every live message carries `at`, when the worker published it (wall
 * clock, µs). For every delta, identified by (session, activation, seq):
 *   ours     = a client's receive time − `at`: end to end, worker publish → Redis → the api's
 *              subscriber, fan-out, HTTP/WebSocket framing, the kernel, the client's parsing;
 *   baseline = the bare subscriber's receive time − `at`: a bare ioredis publish → subscribe of
 *              the same message, at the same moment, under the same load, stamped by the same
 *              thread as the clients (so the measuring's own stalls are in both).
 * ratio = ours p99 / baseline p99. `added_*` is client − bare subscriber (what the api adds once
 * Redis has delivered). SSE is read with a plain node:http reader (stamped when the chunk
 * arrives), Socket.IO with socket.io-client (stamped on the event).
 *
 * The measured phase starts when the clients start recording, before the 50 messages that start
 * the sessions are POSTed, so ours includes the api answering those POSTs while the first
 * sessions already stream (the api is busy for a few hundred ms then). `steady_*` are the same
 * figures for the deltas published after the last POST was answered.
 *
 * For comparison with a quiet machine, a bare ioredis publish → subscribe (publisher and
 * subscriber in this thread, timestamp in the payload) of as many messages at the rate achieved,
 * over as many channels, is also run after the measured phase with nothing else going on:
 * `quiet_baseline_*` and `ratio_vs_quiet_baseline` (ours p99 over its p99). Until 2026-11 that was
 * the baseline, and ours was client − bare subscriber (the worker's publish hop left out).
 *
 * Highest sustained rate (BENCH_DELTA_SEARCH=1; off by default, it adds about 10 s per step):
 * after the measured phase the same sessions and clients stream again at 2×, 4×, … the target
 * rate (BENCH_DELTA_SEARCH_SECONDS per step, up to BENCH_DELTA_SEARCH_MAX/s) until a step misses a
 * delivery or has ours p99 above BENCH_DELTA_SEARCH_P99_MS (default 50), or the sessions publish
 * less than 10 % faster than at the step before (then the one worker producing them is the limit,
 * not the api; the note says which). `max_sustained_rate_per_s` is the highest achieved rate of
 * a step that passed (the measured phase counts as the first step);
 * `search_<target>_{rate_per_s,p99_ms,missing}` in ours list every further step.
 */
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { ClientThreadData, ClientThreadResult } from '../lib/delta-clients.js';
import { PREFIX, REDIS_URL } from '../lib/stack.js';
import { tsWorker, WorkerRpc } from '../lib/threads.js';
import { checkAborted, envInt, fmtMs, latency, log, mapLimit, now, round, sleep, waitFor } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

/** CPU time (user + system) a process has used so far, ms (from /proc; NaN where there is none). */
function cpuMs(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}
const CLK_TCK = 100;

function words(n: number, tag: string): string {
  return Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
}

interface Step {
  target_per_s: number;
  rate_per_s: number;
  p50_ms: number;
  p99_ms: number;
  missing: number;
  passed: boolean;
}

export const deltasScenario: Scenario = {
  name: 'deltas',
  goal: 2,
  timeoutMs: (quick) => (quick ? 180_000 : 360_000) + (process.env.BENCH_DELTA_SEARCH === '1' ? 300_000 : 0),
  async run(ctx: Ctx) {
    const { api, signal } = ctx;
    const sessions = envInt('BENCH_DELTA_SESSIONS', ctx.quick ? 10 : 50);
    const sseClients = envInt('BENCH_DELTA_SSE', ctx.quick ? 20 : 100, 0);
    const sioClients = envInt('BENCH_DELTA_SOCKETIO', ctx.quick ? 20 : 100, 0);
    const targetRate = envInt('BENCH_DELTA_RATE', 1000);
    const seconds = envInt('BENCH_DELTA_SECONDS', ctx.quick ? 4 : 10);
    const threads = Math.min(sessions, envInt('BENCH_DELTA_THREADS', Math.max(1, Math.min(2, os.cpus().length))));
    const search = process.env.BENCH_DELTA_SEARCH === '1';
    const searchSeconds = envInt('BENCH_DELTA_SEARCH_SECONDS', 5);
    const searchMax = envInt('BENCH_DELTA_SEARCH_MAX', 32_000, 1, 1_000_000);
    const searchP99 = envInt('BENCH_DELTA_SEARCH_P99_MS', 50);
    const delayFor = (rate: number) => Math.max(1, Math.round((sessions * 1000) / rate));
    const delay = delayFor(targetRate);
    const perSession = Math.max(10, Math.round((seconds * 1000) / delay));
    const warmWords = Math.max(10, Math.round(perSession / 5));
    log(`deltas: ${sessions} sessions × ${perSession} deltas at ${delay} ms (target ${targetRate}/s for ~${seconds} s), ${sseClients} SSE + ${sioClients} Socket.IO clients in ${threads} client thread(s)`);

    const turns = [{ text: words(warmWords, 'warm') }, { text: words(perSession, 'w') }];
    const agent = await api.agent('bench-deltas', { token_delay_ms: delay, turns });
    // Idle, containerless sessions: the first message starts them all at about the same time.
    const ids = await mapLimit(Array.from({ length: sessions }), 10, async () => {
      const s = await api.session(agent.id);
      ctx.sessions.push(s.id);
      return s.id;
    });

    // When each session goes idle, from its durable status events (the project channel carries
    // no deltas, so this thread has almost nothing to do while the clients measure).
    const watch = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
    const idleIn = new Map<string, number>(); // session → phase in which it last went idle
    let phase = 0;
    watch.on('message', (_channel: string, raw: string) => {
      const m = JSON.parse(raw) as { type: string; session_id: string; event?: { event_type: string; payload: { status?: string } } };
      if (m.type === 'event' && m.event?.event_type === 'status' && m.event.payload.status === 'idle') idleIn.set(m.session_id, phase);
    });
    await watch.subscribe(`${PREFIX}:project:${api.projectId}`);

    // Clients: client j of a kind watches session j % sessions; session i lives in thread i % threads.
    const share = (n: number, i: number) => Math.floor(n / sessions) + (i < n % sessions ? 1 : 0);
    const plan: ClientThreadData[] = Array.from({ length: threads }, () => ({ url: api.url, token: api.token, redisUrl: REDIS_URL, prefix: PREFIX, sessions: [] }));
    ids.forEach((id, i) => plan[i % threads].sessions.push({ id, sse: share(sseClients, i), sio: share(sioClients, i) }));
    const rpcs: WorkerRpc[] = [];
    try {
      const attached = await Promise.all(plan.map((data) => {
        let ready!: (x: { sse: number; sio: number }) => void;
        const isReady = new Promise<{ sse: number; sio: number }>((r) => (ready = r));
        const rpc = new WorkerRpc(tsWorker(new URL('../lib/delta-clients.ts', import.meta.url), data), (msg) => {
          if (msg?.type === 'ready') ready(msg);
        });
        rpcs.push(rpc);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('a client thread was not ready after 120 s')), 120_000)));
        return Promise.race([isReady, rpc.dead, late]).finally(() => clearTimeout(timer));
      }));
      const sseOpen = attached.reduce((a, x) => a + x.sse, 0);
      const sioOpen = attached.reduce((a, x) => a + x.sio, 0);
      log(`deltas: ${sseOpen} SSE and ${sioOpen} Socket.IO clients attached`);

      let steadyFrom = 0;
      const all = <T>(cmd: string, arg?: unknown) => Promise.all(rpcs.map((r) => r.call<T>(cmd, arg)));
      const runPhase = async (label: string, record: boolean) => {
        phase++;
        const p = phase;
        if (record) await all('record', { on: true });
        await mapLimit(ids, 10, (id) => api.message(id, label));
        const t0 = now();
        steadyFrom = performance.timeOrigin + t0;
        await waitFor(`all ${sessions} sessions to finish streaming (${label})`, () => {
          ctx.stack.assertAlive();
          return ids.every((id) => idleIn.get(id) === p);
        }, { timeoutMs: 120_000 + seconds * 3000, everyMs: 100, signal }).catch(async (err: Error) => {
          // Say which sessions are stuck and where, so a failure can be looked into.
          const stuck = ids.filter((id) => idleIn.get(id) !== p);
          const views = await Promise.all(stuck.slice(0, 3).map((id) => api.conversation(id).catch(() => null)));
          const where = views.map((v, i) => `${stuck[i]}: ${v ? `${v.status}${v.error ? ` (${v.error})` : ''}` : '?'}`).join('; ');
          throw new Error(`${err.message}: ${stuck.length} not idle, e.g. ${where}`);
        });
        // Let the last frames drain.
        await sleep(300);
        if (record) await all('record', { on: false });
        return now() - t0;
      };
      const collect = async () => {
        const parts = await all<ClientThreadResult>('results', { steadyFrom });
        const flat = (f: (r: ClientThreadResult) => number[]) => parts.flatMap(f);
        const sse = flat((r) => r.sse);
        const sio = flat((r) => r.sio);
        const published = parts.reduce((a, r) => a + r.published, 0);
        const expected = parts.reduce((a, r) => a + r.expected, 0);
        const first = Math.min(...parts.map((r) => r.refFirst));
        const last = Math.max(...parts.map((r) => r.refLast));
        const rate = published / Math.max(0.001, (last - first) / 1000);
        const loopP99 = Math.max(...parts.map((r) => r.loopP99).filter(Number.isFinite));
        return {
          sse, sio, all: [...sse, ...sio], added: flat((r) => r.added), bare: flat((r) => r.bare),
          steady: flat((r) => r.steady), steadyBare: flat((r) => r.steadyBare),
          published, rate, missing: expected - sse.length - sio.length, loopP99,
        };
      };

      await runPhase('warm-up', false);
      log('deltas: warm-up done (containers up, clients attached); measuring');
      const procs = { api: ctx.stack.api.child.pid, worker: ctx.stack.worker.child.pid, bench: process.pid };
      const cpu0 = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuMs(pid)]));
      const w0 = now();
      const took = await runPhase('measure', true);
      const wall = now() - w0;
      // Share of one core each process used while measuring (the bench's threads included).
      const cpuPct = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, round((100 * (cpuMs(pid) - cpu0[k])) / wall, 1)]));
      checkAborted(signal);
      const m = await collect();
      log(`deltas: ${m.published} deltas in ${(took / 1000).toFixed(1)} s (${Math.round(m.rate)}/s achieved), ${m.all.length} deliveries, ${m.missing} missing`);

      // for comparison: the same bare pub/sub on a quiet machine
      const quiet = latency(await barePubSub(m.published, m.rate, sessions, signal));
      const o = latency(m.all);
      const s = latency(m.sse);
      const io = latency(m.sio);
      const b = latency(m.bare);
      const add = latency(m.added);
      const st = latency(m.steady);
      const stb = latency(m.steadyBare);
      const loopP99 = round(m.loopP99, 2);

      // optional: the highest rate the same sessions and clients sustain
      const steps: Step[] = [];
      let stopped = '';
      if (search) {
        const ok = (missing: number, p99: number) => missing === 0 && p99 <= searchP99;
        steps.push({ target_per_s: targetRate, rate_per_s: Math.round(m.rate), p50_ms: o.p50_ms, p99_ms: o.p99_ms, missing: m.missing, passed: ok(m.missing, o.p99_ms) });
        for (let rate = targetRate * 2; steps.at(-1)!.passed; rate *= 2) {
          if (rate > searchMax) {
            stopped = `BENCH_DELTA_SEARCH_MAX (${searchMax}/s) reached`;
            break;
          }
          const d = delayFor(rate);
          turns.push({ text: words(Math.max(10, Math.round((searchSeconds * 1000) / d)), `r${rate}-`) });
          await api.call('PATCH', `/api/v1/projects/${api.projectId}/agents/${agent.id}`, { script: { token_delay_ms: d, turns } });
          await runPhase(`rate ${rate}`, true);
          const r = await collect();
          const l = latency(r.all);
          const prev = steps.at(-1)!;
          const step = { target_per_s: rate, rate_per_s: Math.round(r.rate), p50_ms: l.p50_ms, p99_ms: l.p99_ms, missing: r.missing, passed: ok(r.missing, l.p99_ms) };
          steps.push(step);
          log(`deltas: search ${rate}/s (token delay ${d} ms): ${step.rate_per_s}/s achieved, p50 ${fmtMs(l.p50_ms)} / p99 ${fmtMs(l.p99_ms)} ms, ${r.missing} missing → ${step.passed ? 'sustained' : 'not sustained'}`);
          checkAborted(signal);
          if (!step.passed) stopped = r.missing ? `${r.missing} deliveries missing at ${step.rate_per_s}/s` : `p99 above ${searchP99} ms at ${step.rate_per_s}/s`;
          // The scripted sessions (one worker) could not publish faster: the api is not the limit here.
          else if (step.rate_per_s < prev.rate_per_s * 1.1) stopped = `the sessions published no faster at a ${rate}/s target (the worker is the limit)`;
          if (stopped) break;
        }
      }
      const sustained = steps.filter((x) => x.passed).sort((x, y) => y.rate_per_s - x.rate_per_s)[0];

      return {
        name: 'deltas', goal: 2,
        ours: {
          p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n,
          sse_p50_ms: s.p50_ms, sse_p99_ms: s.p99_ms, socketio_p50_ms: io.p50_ms, socketio_p99_ms: io.p99_ms,
          added_p50_ms: add.p50_ms, added_p99_ms: add.p99_ms,
          steady_p50_ms: st.p50_ms, steady_p99_ms: st.p99_ms, steady_n: st.n,
          steady_baseline_p99_ms: stb.p99_ms, steady_ratio: round(st.p99_ms / stb.p99_ms, 3),
          rate_per_s: Math.round(m.rate), sessions, sse_clients: sseOpen, socketio_clients: sioOpen, missing_deliveries: m.missing,
          client_threads: threads, client_loop_delay_p99_ms: loopP99,
          api_cpu_pct: cpuPct.api, worker_cpu_pct: cpuPct.worker, bench_cpu_pct: cpuPct.bench,
          ...(search ? {
            max_sustained_rate_per_s: sustained?.rate_per_s ?? 0,
            ...Object.fromEntries(steps.slice(1).flatMap((x) => [[`search_${x.target_per_s}_rate_per_s`, x.rate_per_s], [`search_${x.target_per_s}_p99_ms`, x.p99_ms], [`search_${x.target_per_s}_missing`, x.missing]])),
          } : {}),
        },
        baseline: {
          p50_ms: b.p50_ms, p99_ms: b.p99_ms, n: b.n, rate_per_s: Math.round(m.rate),
          quiet_baseline_p50_ms: quiet.p50_ms, quiet_baseline_p99_ms: quiet.p99_ms, ratio_vs_quiet_baseline: round(o.p99_ms / quiet.p99_ms, 3),
        },
        ratio: round(o.p99_ms / b.p99_ms, 3),
        show: {
          ours: `p50 ${fmtMs(o.p50_ms)} / p99 ${fmtMs(o.p99_ms)} ms @ ${Math.round(m.rate)}/s`,
          baseline: `p50 ${fmtMs(b.p50_ms)} / p99 ${fmtMs(b.p99_ms)} ms`,
          note: `${sessions} sessions → ${sseOpen} SSE (p99 ${fmtMs(s.p99_ms)}) + ${sioOpen} Socket.IO (p99 ${fmtMs(io.p99_ms)}) clients in ${threads} thread(s); worker publish → client, against a bare subscriber of the same messages; ratio is p99/p99; the api adds p50 ${fmtMs(add.p50_ms)} / p99 ${fmtMs(add.p99_ms)} ms once Redis delivered; after all ${sessions} sessions had been started (steady): p99 ${fmtMs(st.p99_ms)} vs ${fmtMs(stb.p99_ms)} ms (ratio ${round(st.p99_ms / stb.p99_ms, 2)}); the same bare pub/sub on a quiet machine: p50 ${fmtMs(quiet.p50_ms)} / p99 ${fmtMs(quiet.p99_ms)} ms (ours p99 over it: ${round(o.p99_ms / quiet.p99_ms, 2)}); client threads' event-loop delay p99 ${fmtMs(loopP99)} ms; CPU while measuring: api ${cpuPct.api} %, worker ${cpuPct.worker} %, bench ${cpuPct.bench} % of a core; ${m.missing} deliveries missing`
            + (search ? `; highest sustained rate ${sustained?.rate_per_s ?? 0}/s (${steps.map((x) => `${x.target_per_s}→${x.rate_per_s}/s p99 ${fmtMs(x.p99_ms)}${x.missing ? ` ${x.missing} missing` : ''}`).join(', ')}; stopped: ${stopped})` : ''),
        },
      };
    } finally {
      await Promise.all(rpcs.map((r) => r.call('close', undefined, 5000).catch(() => {})));
      await Promise.all(rpcs.map((r) => r.worker.terminate().catch(() => 0)));
      watch.disconnect();
    }
  },
};

/** `count` messages published at `rate`/s over `channels` channels; returns publish → receive latencies. */
async function barePubSub(count: number, rate: number, channels: number, signal: AbortSignal): Promise<number[]> {
  const pub = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const out: number[] = [];
  try {
    const names = Array.from({ length: channels }, (_, i) => `${PREFIX}:bench-baseline:${i}`);
    await sub.subscribe(...names);
    sub.on('message', (_c: string, raw: string) => {
      const at = now();
      out.push(at - (JSON.parse(raw) as { t: number }).t);
    });
    const t0 = now();
    let sent = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (signal.aborted) {
          clearInterval(timer);
          return reject(new Error('aborted'));
        }
        const due = Math.min(count, Math.floor(((now() - t0) / 1000) * rate) + 1);
        for (; sent < due; sent++) {
          // Shaped like a delta message, with the send time in it.
          const msg = JSON.stringify({ type: 'text_delta', session_id: '00000000-0000-0000-0000-000000000000', project_id: '00000000-0000-0000-0000-000000000000', turn: 1, delta: `w${sent} `, activation: 1, seq: sent, t: now() });
          void pub.publish(names[sent % channels], msg).catch(() => {});
        }
        if (sent >= count) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    await waitFor('the baseline subscriber', () => out.length >= count, { timeoutMs: 10_000, signal }).catch(() => {});
    return out;
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}
