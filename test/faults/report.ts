/** The table the suite prints and the JSON it writes (results/latest.json). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT } from './cluster.js';

export interface FaultResult {
  name: string;
  /** How many times the fault was injected. */
  runs: number;
  /** Sessions (or streams / requests) the fault hit. */
  affected: number;
  lost: number;
  duplicated: number;
  stuck: number;
  /** Sessions that ended failed (with their reasons in `failures`). Not a pass/fail column by itself. */
  failed: number;
  /** Sessions checked in all (affected or not). */
  sessions: number;
  /** How the affected column reads when it is not "n of m sessions" (the fuzz counts requests). */
  affectedLabel?: string;
  seconds: number;
  /** false when the fault's own checks failed (e.g. a 5xx in the fuzz, a process that died). */
  ok: boolean;
  failures: string[];
  problems: string[];
  details: Record<string, unknown>;
}

export const emptyResult = (name: string): FaultResult => ({
  name, runs: 0, affected: 0, lost: 0, duplicated: 0, stuck: 0, failed: 0, sessions: 0, seconds: 0, ok: true, failures: [], problems: [], details: {},
});

export function verdict(r: FaultResult): boolean {
  return r.ok && r.lost === 0 && r.duplicated === 0 && r.stuck === 0;
}

export function table(results: FaultResult[]): string {
  const head = ['fault', 'runs', 'sessions affected', 'events lost', 'events duplicated', 'sessions stuck', 'sessions failed', 'time', 'result'];
  const rows = results.map((r) => [r.name, String(r.runs), r.affectedLabel ?? `${r.affected} of ${r.sessions}`, String(r.lost), String(r.duplicated), String(r.stuck), String(r.failed), `${r.seconds.toFixed(0)} s`, verdict(r) ? 'pass' : 'FAIL']);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function machine() {
  const v = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000 }).trim().split('\n')[0];
    } catch {
      return null;
    }
  };
  return {
    hostname: os.hostname(), platform: `${os.type()} ${os.release()}`, cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model,
    memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version,
    postgres: v('psql', ['--version']), redis: v('redis-server', ['--version']), docker: v('docker', ['version', '--format', '{{.Server.Version}}']),
  };
}

export function writeResults(results: FaultResult[], startedAt: Date, file = path.join(ROOT, 'test/faults/results/latest.json')) {
  const out = {
    machine: machine(),
    started_at: startedAt.toISOString(),
    duration_s: Math.round((Date.now() - startedAt.getTime()) / 1000),
    passed: results.every(verdict),
    faults: results.map((r) => ({
      name: r.name, runs: r.runs, sessions_affected: r.affected, affected_label: r.affectedLabel, sessions: r.sessions, events_lost: r.lost, events_duplicated: r.duplicated,
      sessions_stuck: r.stuck, sessions_failed: r.failed, seconds: Math.round(r.seconds), passed: verdict(r),
      failures: r.failures.slice(0, 50), problems: r.problems.slice(0, 50), details: r.details,
    })),
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  return file;
}
