/**
 * start: POST /api/v1/sessions with a message → the first durable event that needed the sandbox,
 * as received on the session's SSE stream.
 *
 * The `status: queued` and `user_message` events are written by the POST itself (before any
 * container exists), so "the first durable event" is taken to be the first one the worker can
 * only write once the container is up: the scripted model's first message (`text_complete`;
 * a one-word answer with no delay). Timed from just before the POST is sent.
 *
 * Baseline: `docker run --rm --network none troupe-sandbox-minimal true` through the CLI.
 * Runs are interleaved (ours, baseline, ours, ...) so drift hits both alike.
 *
 * The worker keeps a warm pool (TROUPE_POOL_SIZE paused containers, default 2): a session takes
 * one and the pool refills in the background (a create + start, ~150 ms of engine work). Before
 * each timed step (ours and baseline alike) the scenario waits, untimed, until the pool is full
 * again and the stopped session's container is gone, so no background Docker work overlaps a
 * measurement in either direction. What is measured is a start with a ready pool: the steady state
 * while sessions start no faster than the pool refills. TROUPE_POOL_SIZE=0 measures the plain
 * create path.
 */
import { openSse } from '../lib/client.js';
import { docker, execFileP, IMAGE, INSTANCE } from '../lib/stack.js';
import { checkAborted, fmtMs, latency, log, now, round } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

const POOL_SIZE = Number(process.env.TROUPE_POOL_SIZE ?? 2);

/** Untimed: until the worker's pool is full and no other bench container is left running. */
async function settle(signal: AbortSignal) {
  for (let i = 0; i < 100; i++) {
    checkAborted(signal);
    const cs = await docker.listContainers({ all: true, filters: { label: [`troupe.instance=${INSTANCE}`] } });
    const pooled = cs.filter((c) => c.Names[0]?.startsWith('/troupe-pool-') && c.State === 'paused').length;
    const others = cs.filter((c) => !c.Names[0]?.startsWith('/troupe-pool-')).length;
    if (pooled >= POOL_SIZE && others === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const startScenario: Scenario = {
  name: 'start',
  goal: 0.5,
  timeoutMs: (quick) => (quick ? 120_000 : 300_000),
  async run(ctx: Ctx) {
    const { api, signal } = ctx;
    const warmup = ctx.quick ? 2 : 3;
    const runs = ctx.quick ? 6 : 30;
    const agent = await api.agent('bench-start', { token_delay_ms: 0, turns: [{ text: 'ready' }] });
    const ours: number[] = [];
    const firstAny: number[] = [];
    const base: number[] = [];

    for (let i = 0; i < warmup + runs; i++) {
      checkAborted(signal);
      ctx.stack.assertAlive();
      // ours
      await settle(signal);
      const t0 = now();
      const s = await api.session(agent.id, 'go');
      ctx.sessions.push(s.id);
      const sse = openSse(api, s.id);
      try {
        await sse.ready;
        const first = await sse.waitFrame('the first durable event', (f) => f.id !== null, { timeoutMs: 30_000, signal });
        const done = await sse.waitFrame('the model\'s first message (text_complete)', (f) => f.event === 'text_complete', { timeoutMs: 60_000, signal });
        if (i >= warmup) {
          ours.push(done.at - t0);
          firstAny.push(first.at - t0);
        }
      } finally {
        sse.close();
      }
      // Not timed: stop the session so its container does not weigh on the next runs.
      await api.control(s.id, 'stop').catch(() => {});

      // baseline
      await settle(signal);
      const b0 = now();
      await execFileP('docker', ['run', '--rm', '--network', 'none', IMAGE, 'true'], { timeout: 60_000 });
      if (i >= warmup) base.push(now() - b0);
      if ((i + 1) % 5 === 0 || i === warmup + runs - 1) {
        log(`start: ${Math.max(0, i + 1 - warmup)}/${runs} runs (last: ours ${fmtMs(ours.at(-1) ?? NaN)} ms, docker run ${fmtMs(base.at(-1) ?? NaN)} ms)`);
      }
    }
    const o = latency(ours);
    const b = latency(base);
    const f = latency(firstAny);
    return {
      name: 'start', goal: 0.5,
      ours: { p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n, first_any_event_p50_ms: f.p50_ms, pool_size: POOL_SIZE },
      baseline: { p50_ms: b.p50_ms, p99_ms: b.p99_ms, n: b.n },
      ratio: round(o.p50_ms / b.p50_ms, 3),
      show: {
        ours: `p50 ${fmtMs(o.p50_ms)} / p99 ${fmtMs(o.p99_ms)} ms`,
        baseline: `p50 ${fmtMs(b.p50_ms)} / p99 ${fmtMs(b.p99_ms)} ms`,
        note: `POST → first sandbox-backed event (text_complete), n=${o.n}; any durable event (written by the POST itself): p50 ${fmtMs(f.p50_ms)} ms`,
      },
    };
  },
};
