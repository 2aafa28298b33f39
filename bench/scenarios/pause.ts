/**
 * pause / resume of an idle session (it has run one turn; its container is up):
 *   pause:  POST .../conversations/:id/pause  → Docker reports the container paused
 *   resume: POST .../conversations/:id/resume → Docker reports it unpaused AND the next event
 *           (the worker's `status: running` claim) arrives on the SSE stream; the later of the two.
 * "Docker reports" = the engine's own `pause` / `unpause` event, read from its event stream
 * (no polling). The API's response time is recorded alongside (it answers after docker pause).
 * After each resume the session goes idle again (its script is used up) before the next cycle.
 *
 * Baselines: `docker pause` / `docker unpause` through the CLI on a running minimal container.
 */
import type { Readable } from 'node:stream';
import { openSse } from '../lib/client.js';
import { docker, execFileP, IMAGE, INSTANCE } from '../lib/stack.js';
import { checkAborted, fmtMs, latency, log, now, round } from '../lib/util.js';
import type { Ctx, Scenario, ScenarioResult } from './types.js';

const isStatus = (status: string) => (f: { event: string; data: any }) => f.event === 'status' && f.data?.payload?.status === status;

export const pauseScenario: Scenario = {
  name: 'pause',
  aliases: ['resume', 'pause/resume'],
  goal: 1,
  timeoutMs: (quick) => (quick ? 120_000 : 240_000),
  async run(ctx: Ctx) {
    const { api, signal } = ctx;
    const warmup = ctx.quick ? 2 : 3;
    const runs = ctx.quick ? 6 : 25;
    const agent = await api.agent('bench-pause', { token_delay_ms: 0, turns: [{ text: 'ready' }] });
    const s = await api.session(agent.id, 'go');
    ctx.sessions.push(s.id);
    const sse = openSse(api, s.id);
    await sse.ready;
    await sse.waitFrame('the session to go idle', isStatus('idle'), { timeoutMs: 60_000, signal });
    const cid: string | null = (await api.conversation(s.id)).container_id;
    if (!cid) throw new Error('the session has no container_id');

    // The engine's events for this container, stamped on arrival.
    const seen: Array<{ action: string; at: number }> = [];
    const events = (await docker.getEvents({ filters: { container: [cid], event: ['pause', 'unpause'] } } as object)) as Readable;
    let pending = '';
    events.on('data', (chunk: Buffer) => {
      const at = now();
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line) seen.push({ action: (JSON.parse(line) as { Action?: string; status?: string }).Action ?? '', at });
      }
    });
    events.on('error', () => {});
    const dockerEvent = async (action: string, after: number) => {
      const deadline = now() + 15_000;
      for (;;) {
        const e = seen.find((x) => x.action === action && x.at >= after);
        if (e) return e.at;
        checkAborted(signal);
        if (now() > deadline) throw new Error(`Docker never reported "${action}" for the session's container`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };

    const { stdout } = await execFileP('docker', ['run', '-d', '--network', 'none', '--label', `troupe.instance=${INSTANCE}`, '--label', 'troupe.bench=baseline', IMAGE]);
    const baseCid = stdout.trim();
    ctx.containers.push(baseCid);

    const pauseOurs: number[] = [];
    const pauseApi: number[] = [];
    const resumeOurs: number[] = [];
    const resumeApi: number[] = [];
    const pauseBase: number[] = [];
    const resumeBase: number[] = [];
    try {
      for (let i = 0; i < warmup + runs; i++) {
        checkAborted(signal);
        ctx.stack.assertAlive();
        const keep = i >= warmup;
        // pause
        const p0 = now();
        await api.control(s.id, 'pause');
        const pApi = now();
        const pDocker = await dockerEvent('pause', p0);
        if (keep) {
          pauseOurs.push(pDocker - p0);
          pauseApi.push(pApi - p0);
        }
        // resume
        const from = sse.frames.length;
        const r0 = now();
        await api.control(s.id, 'resume');
        const rApi = now();
        const rDocker = await dockerEvent('unpause', r0);
        const running = await sse.waitFrame('the worker\'s next event after resume', isStatus('running'), { from, timeoutMs: 30_000, signal });
        if (keep) {
          resumeOurs.push(Math.max(rDocker, running.at) - r0);
          resumeApi.push(rApi - r0);
        }
        await sse.waitFrame('the session to go idle again', isStatus('idle'), { from, timeoutMs: 30_000, signal });

        // baselines
        const b0 = now();
        await execFileP('docker', ['pause', baseCid], { timeout: 30_000 });
        const b1 = now();
        await execFileP('docker', ['unpause', baseCid], { timeout: 30_000 });
        const b2 = now();
        if (keep) {
          pauseBase.push(b1 - b0);
          resumeBase.push(b2 - b1);
        }
        if ((i + 1) % 10 === 0) log(`pause/resume: ${Math.max(0, i + 1 - warmup)}/${runs} cycles`);
      }
    } finally {
      events.destroy();
      sse.close();
    }

    const result = (name: string, ours: number[], viaApi: number[], base: number[], note: string): ScenarioResult => {
      const o = latency(ours);
      const a = latency(viaApi);
      const b = latency(base);
      return {
        name, goal: 1,
        ours: { p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n, api_response_p50_ms: a.p50_ms },
        baseline: { p50_ms: b.p50_ms, p99_ms: b.p99_ms, n: b.n },
        ratio: round(o.p50_ms / b.p50_ms, 3),
        show: {
          ours: `p50 ${fmtMs(o.p50_ms)} / p99 ${fmtMs(o.p99_ms)} ms`,
          baseline: `p50 ${fmtMs(b.p50_ms)} / p99 ${fmtMs(b.p99_ms)} ms`,
          note: `${note}; API answered at p50 ${fmtMs(a.p50_ms)} ms; n=${o.n}`,
        },
      };
    };
    return [
      result('pause', pauseOurs, pauseApi, pauseBase, 'idle session: request → Docker "pause" event'),
      result('resume', resumeOurs, resumeApi, resumeBase, 'request → Docker "unpause" event and the worker\'s status:running on SSE'),
    ];
  },
};
