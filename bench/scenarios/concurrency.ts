/**
 * concurrency: K sessions at once (BENCH_SESSIONS, default 200 as the issue asks; 10 with BENCH_QUICK), each with
 * its own container and three `bash true` tool calls, then a closing message. A session counts as
 * completed when it reached `idle` (or `completed`) with three successful tool results.
 * Reported: completed / K, wall time (first POST → last session settled), and the RSS growth of
 * the worker and the api processes (peak during the run − before it) divided by K.
 *
 * Baseline (for the wall time only): the same container work done directly through the Docker API
 * at the same parallelism: create + start K containers, three `true` execs each, remove.
 * ratio = sessions not completed / K; goal 0.
 */
import { docker, IMAGE, INSTANCE } from '../lib/stack.js';
import { checkAborted, envInt, log, mapLimit, now, round, sleep } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

export const concurrencySessions = (quick: boolean) => envInt('BENCH_SESSIONS', quick ? 10 : 200, 1, 1000);

export const concurrencyScenario: Scenario = {
  name: 'concurrency',
  goal: 0,
  timeoutMs: (quick) => 120_000 + concurrencySessions(quick) * 4000,
  async run(ctx: Ctx) {
    const { api, stack, signal } = ctx;
    const k = concurrencySessions(ctx.quick);
    const tool = { name: 'bash', input: { command: 'true' } };
    const agent = await api.agent('bench-concurrency', {
      token_delay_ms: 0,
      turns: [{ text: 'one', tool_calls: [tool] }, { text: 'two', tool_calls: [tool] }, { text: 'three', tool_calls: [tool] }, { text: 'done' }],
    });

    // memory before, then sampled every 250 ms
    await sleep(500);
    const before = { worker: stack.worker.rssMb(), api: stack.api.rssMb() };
    const peak = { ...before };
    const sampler = setInterval(() => {
      peak.worker = Math.max(peak.worker, stack.worker.rssMb());
      peak.api = Math.max(peak.api, stack.api.rssMb());
    }, 250);

    const t0 = now();
    let settledAt: number;
    const ids: string[] = [];
    const createErrors: string[] = [];
    try {
      // All at once (bounded only by the HTTP client: 32 POSTs in flight).
      await mapLimit(Array.from({ length: k }), 32, async () => {
        try {
          const s = await api.session(agent.id, 'go');
          ids.push(s.id);
          ctx.sessions.push(s.id);
        } catch (err) {
          createErrors.push((err as Error).message);
        }
      });
      log(`concurrency: ${ids.length}/${k} sessions created in ${((now() - t0) / 1000).toFixed(1)} s`);
      let lastLog = now();
      for (;;) {
        checkAborted(signal);
        stack.assertAlive();
        const [idle, completed, failed] = await Promise.all(['idle', 'completed', 'failed'].map((st) => api.countByStatus(agent.id, st)));
        const settled = idle + completed + failed;
        if (settled >= ids.length) {
          settledAt = now();
          break;
        }
        if (now() - lastLog > 5000) {
          lastLog = now();
          log(`concurrency: ${settled}/${ids.length} settled (${failed} failed) after ${((now() - t0) / 1000).toFixed(0)} s; worker RSS ${Math.round(stack.worker.rssMb())} MB, api ${Math.round(stack.api.rssMb())} MB`);
        }
        await sleep(200);
      }
    } finally {
      clearInterval(sampler);
    }
    const wallS = (settledAt - t0) / 1000;

    // verify each session: idle/completed with three successful bash results
    let ok = 0;
    const problems: string[] = [...createErrors.slice(0, 3)];
    await mapLimit(ids, 8, async (id) => {
      const conv = await api.conversation(id);
      const events = await api.events(id);
      const results = events.filter((e) => e.event_type === 'tool_result');
      const good = results.filter((e) => !e.payload.is_error && (e.payload.exit_code ?? 0) === 0).length;
      if (['idle', 'completed'].includes(conv.status) && good === 3) ok++;
      else if (problems.length < 5) problems.push(`${id}: ${conv.status}${conv.error ? ` (${conv.error})` : ''}, ${good}/3 tool calls ok`);
    });
    log(`concurrency: ${ok}/${k} completed in ${wallS.toFixed(1)} s${problems.length ? `; e.g. ${problems.join('; ')}` : ''}`);

    // baseline: the same container work straight through the Docker API
    checkAborted(signal);
    const b0 = now();
    await mapLimit(Array.from({ length: k }), 32, async () => {
      const c = await docker.createContainer({
        Image: IMAGE, Labels: { 'troupe.instance': INSTANCE, 'troupe.bench': 'baseline' },
        HostConfig: { NetworkMode: 'none', Init: true },
      });
      ctx.containers.push(c.id);
      await c.start();
      for (let i = 0; i < 3; i++) {
        const exec = await c.exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({ hijack: false, stdin: false });
        await new Promise<void>((r) => {
          stream.on('end', r).on('close', r).on('error', () => r());
          stream.resume();
        });
      }
    });
    const baseWallS = (now() - b0) / 1000;
    log(`concurrency: baseline (Docker API, ${k} containers × 3 execs) took ${baseWallS.toFixed(1)} s`);

    const perSession = (grow: number) => round(Math.max(0, grow) / k, 2);
    const workerPer = perSession(peak.worker - before.worker);
    const apiPer = perSession(peak.api - before.api);
    return {
      name: 'concurrency', goal: 0,
      ours: {
        sessions: k, completed: ok, wall_s: round(wallS, 1),
        worker_rss_mb_per_session: workerPer, api_rss_mb_per_session: apiPer,
        worker_rss_peak_mb: Math.round(peak.worker), api_rss_peak_mb: Math.round(peak.api),
      },
      baseline: { wall_s: round(baseWallS, 1) },
      ratio: round((k - ok) / k, 3),
      show: {
        ours: `${ok}/${k} done in ${wallS.toFixed(1)} s`,
        baseline: `docker API: ${baseWallS.toFixed(1)} s`,
        note: `RSS per session: worker ${workerPer} MB, api ${apiPer} MB (peaks ${Math.round(peak.worker)} / ${Math.round(peak.api)} MB); ratio = not completed / sessions`,
      },
    };
  },
};
