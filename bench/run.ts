/**
 * `npm run bench`: the runtime's speed against plain Docker and plain Redis, measured in the same
 * run. Starts the api and a session worker as child processes on a fresh `troupe_bench` database,
 * the `troupe-bench` Redis prefix and the `bench` container label; runs each scenario (warm-up,
 * then N runs) with the scripted model on troupe-sandbox-minimal; prints one table and writes
 * bench/results/latest.json. See bench/README.md.
 *
 *   BENCH_ONLY=start,tool   run a subset (start, tool, pause (= resume), deltas, concurrency)
 *   BENCH_QUICK=1           small N everywhere
 *   BENCH_SESSIONS=50       sessions in the concurrency scenario (default 200)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Api } from './lib/client.js';
import { flushPrefix, INSTANCE, machineInfo, prepareDatabase, removeBenchContainers, RESULTS_DIR, startStack, docker, type Stack } from './lib/stack.js';
import { log, now, QUICK, withTimeout } from './lib/util.js';
import { concurrencyScenario, concurrencySessions } from './scenarios/concurrency.js';
import { deltasScenario } from './scenarios/deltas.js';
import { pauseScenario } from './scenarios/pause.js';
import { startScenario } from './scenarios/start.js';
import { toolScenario } from './scenarios/tool.js';
import type { Ctx, Scenario, ScenarioResult } from './scenarios/types.js';
import { envInt } from './lib/util.js';

const ALL: Scenario[] = [startScenario, toolScenario, pauseScenario, deltasScenario, concurrencyScenario];

function selected(): Scenario[] {
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (!only.length) return ALL;
  const known = ALL.flatMap((s) => [s.name, ...(s.aliases ?? [])]);
  const unknown = only.filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(', ')}; expected ${ALL.map((s) => s.name).join(', ')}`);
  return ALL.filter((s) => only.includes(s.name) || (s.aliases ?? []).some((a) => only.includes(a)));
}

function failed(s: Scenario, err: unknown): ScenarioResult[] {
  const names = s.name === 'pause' ? ['pause', 'resume'] : [s.name];
  const message = (err as Error)?.message ?? String(err);
  return names.map((name) => ({ name, ours: null, baseline: null, ratio: null, goal: s.goal, error: message }));
}

/** Whether the ratio meets the goal (all goals are upper bounds). */
const met = (r: ScenarioResult) => (r.ratio === null ? 'FAILED' : r.ratio <= r.goal ? 'yes' : 'no');

function table(results: ScenarioResult[]): string {
  const rows = [['scenario', 'ours', 'baseline (same run)', 'ratio', 'goal', 'met']];
  for (const r of results) {
    rows.push([
      r.name,
      r.error ? `FAILED: ${r.error.split('\n')[0].slice(0, 80)}` : r.show?.ours ?? '',
      r.show?.baseline ?? '-',
      r.ratio === null ? '-' : String(r.ratio),
      `≤ ${r.goal}`,
      met(r),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  const out = [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)];
  const notes = results.filter((r) => r.show?.note).map((r) => `  ${r.name}: ${r.show!.note}`);
  return [...out, '', ...notes].join('\n');
}

async function main() {
  const t0 = now();
  const scenarios = selected();
  log(`scenarios: ${scenarios.map((s) => s.name).join(', ')}${QUICK ? ' (quick)' : ''}`);
  const machine = await machineInfo();
  log(`machine: ${machine.cpus} cpus, ${machine.memory_gb} GB, node ${machine.node}, docker ${machine.docker_version}`);
  const load = os.loadavg()[0];
  log(`load average (1 min): ${load.toFixed(2)}${load > machine.cpus / 2 ? '  ← the machine is busy; figures will be noisy (run again when it is quiet)' : ''}`);

  log(`removed ${await removeBenchContainers()} leftover bench containers, ${await flushPrefix()} stale Redis keys`);
  await prepareDatabase();
  // Enough worker slots for the widest scenario.
  const concurrency = Math.max(20, concurrencySessions(QUICK), envInt('BENCH_DELTA_SESSIONS', QUICK ? 10 : 50)) + 5;
  const stack: Stack = await startStack({ workerConcurrency: concurrency });
  log(`api at ${stack.url} (pid ${stack.api.child.pid}), worker pid ${stack.worker.child.pid} (concurrency ${concurrency}); logs in bench/results/{api,worker}.log`);

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: cleaning up (Ctrl-C again to leave at once)');
    void cleanupAll(stack).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: ScenarioResult[] = [];
  try {
    const api = await Api.connect(stack.url);
    for (const s of scenarios) {
      const started = now();
      log(`── ${s.name} ──`);
      const ctx: Ctx = { api, stack, quick: QUICK, signal: new AbortController().signal, sessions: [], containers: [] };
      try {
        const r = await withTimeout(`scenario ${s.name}`, s.timeoutMs(QUICK), (signal) => s.run({ ...ctx, signal }));
        results.push(...(Array.isArray(r) ? r : [r]));
      } catch (err) {
        log(`${s.name} FAILED: ${(err as Error).message}`);
        results.push(...failed(s, err));
      } finally {
        // Stop the scenario's sessions (removes their containers) and its baseline containers.
        await withTimeout(`cleanup after ${s.name}`, 120_000, async () => {
          await api.stopAll(ctx.sessions);
          await Promise.all(ctx.containers.map((id) => docker.getContainer(id).remove({ force: true }).catch(() => {})));
        }).catch((err) => log(`cleanup: ${(err as Error).message}`));
        log(`${s.name}: ${((now() - started) / 1000).toFixed(0)} s`);
      }
    }
  } finally {
    await cleanupAll(stack);
  }

  const report = {
    machine,
    // Keys in the order; `error` only on failure.
    scenarios: results.map((r) => ({ name: r.name, ours: r.ours, baseline: r.baseline, ratio: r.ratio, goal: r.goal, ...(r.error ? { error: r.error } : {}) })),
  };
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  const minutes = ((now() - t0) / 60_000).toFixed(1);
  console.log('');
  console.log(`Troupe benchmark, ${new Date().toISOString().slice(0, 10)}: ${machine.cpus} cpus, ${machine.memory_gb} GB RAM, node ${machine.node}, docker ${machine.docker_version}${QUICK ? ' (BENCH_QUICK)' : ''}`);
  console.log('');
  console.log(table(results));
  console.log('');
  console.log(`wrote bench/results/latest.json; took ${minutes} min; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  // Exit explicitly: keep-alive sockets of the HTTP client would otherwise hold the process.
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

let cleaned: Promise<void> | undefined;
function cleanupAll(stack: Stack): Promise<void> {
  cleaned ??= (async () => {
    await stack.stop().catch(() => {});
    const n = await removeBenchContainers().catch(() => 0);
    await flushPrefix().catch(() => 0);
    log(`stopped api and worker; removed ${n} containers labelled troupe.instance=${INSTANCE}`);
  })();
  return cleaned;
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error)?.stack ?? err}`);
  process.exit(1);
});
