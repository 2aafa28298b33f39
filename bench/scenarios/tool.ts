/**
 * tool: one `bash` tool call running `true`, from the model's tool call to its result, over many
 * calls in one session (a script of N turns, each calling bash `true`). Measured on the SSE
 * stream: the durable tool_use event (`tool_use_complete`) → its `tool_result`, matched by id.
 * Both frames travel the same path (worker → Postgres → Redis → api → client), so that path's
 * latency cancels out; what remains is the worker's turn: reading the log, the Docker exec
 * (create, start, stream, exit code), recording the result.
 *
 * Baseline: `docker exec <container> true` through the CLI on a running minimal container.
 */
import { openSse } from '../lib/client.js';
import { execFileP, IMAGE, INSTANCE } from '../lib/stack.js';
import { checkAborted, fmtMs, latency, log, now, round } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

export const toolScenario: Scenario = {
  name: 'tool',
  goal: 0.2,
  timeoutMs: (quick) => (quick ? 120_000 : 300_000),
  async run(ctx: Ctx) {
    const { api, signal } = ctx;
    const warmup = ctx.quick ? 3 : 5;
    const runs = ctx.quick ? 15 : 60;
    const total = warmup + runs;
    const turns = Array.from({ length: total }, () => ({ tool_calls: [{ name: 'bash', input: { command: 'true' } }] }));
    const agent = await api.agent('bench-tool', { token_delay_ms: 0, turns });

    const s = await api.session(agent.id, 'go');
    ctx.sessions.push(s.id);
    const sse = openSse(api, s.id);
    const useAt = new Map<string, number>();
    const ours: number[] = [];
    let results = 0;
    try {
      await sse.ready;
      let from = 0;
      while (results < total) {
        const f = await sse.waitFrame(`tool result ${results + 1}/${total}`, (x) => x.event === 'tool_use_complete' || x.event === 'tool_result' || x.event === 'session_error' || x.event === 'session_failed', { from, timeoutMs: 60_000, signal });
        from = sse.frames.indexOf(f) + 1;
        if (f.event === 'session_error' || f.event === 'session_failed') throw new Error(`session failed: ${JSON.stringify(f.data.payload ?? f.data)}`);
        if (f.event === 'tool_use_complete') useAt.set(f.data.payload.id, f.at);
        else {
          const started = useAt.get(f.data.payload.tool_use_id);
          if (f.data.payload.is_error) throw new Error(`bash true failed: ${JSON.stringify(f.data.payload)}`);
          if (started !== undefined && results >= warmup) ours.push(f.at - started);
          results++;
          if (results % 20 === 0) log(`tool: ${results}/${total} calls`);
        }
      }
    } finally {
      sse.close();
    }

    // baseline: a running minimal container, `docker exec <id> true` through the CLI
    checkAborted(signal);
    const { stdout } = await execFileP('docker', ['run', '-d', '--network', 'none', '--label', `troupe.instance=${INSTANCE}`, '--label', 'troupe.bench=baseline', IMAGE]);
    const cid = stdout.trim();
    ctx.containers.push(cid);
    const base: number[] = [];
    for (let i = 0; i < total; i++) {
      checkAborted(signal);
      const t0 = now();
      await execFileP('docker', ['exec', cid, 'true'], { timeout: 30_000 });
      if (i >= warmup) base.push(now() - t0);
    }
    const o = latency(ours);
    const b = latency(base);
    return {
      name: 'tool', goal: 0.2,
      ours: { p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n },
      baseline: { p50_ms: b.p50_ms, p99_ms: b.p99_ms, n: b.n },
      ratio: round(o.p50_ms / b.p50_ms, 3),
      show: {
        ours: `p50 ${fmtMs(o.p50_ms)} / p99 ${fmtMs(o.p99_ms)} ms`,
        baseline: `p50 ${fmtMs(b.p50_ms)} / p99 ${fmtMs(b.p99_ms)} ms`,
        note: `tool_use_complete → tool_result on SSE, bash "true", ${o.n} calls in one session`,
      },
    };
  },
};
