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
 */
import { openSse } from '../lib/client.js';
import { execFileP, IMAGE } from '../lib/stack.js';
import { checkAborted, fmtMs, latency, log, now, round } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

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
      ours: { p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n, first_any_event_p50_ms: f.p50_ms },
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
