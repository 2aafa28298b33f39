/**
 * Real api and worker processes (`node --import tsx`), for the tests that kill them, the fault
 * suite (test/faults/cluster.ts) and the benchmark (bench/lib/stack.ts): one way to start a
 * process, wait until it says it is ready, keep its output, and stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  /** The exit code (null when a signal ended it), once it has exited. */
  exited: Promise<number | null>;
  alive(): boolean;
  /** What it printed (stdout and stderr), up to the first `keepOutput` characters. */
  output(): string;
  /** Resident set size in MB, from /proc (NaN once it is gone). */
  rssMb(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  script: string;
  args?: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Resolves once the output matches this. */
  ready: RegExp;
  /** Default 30 s; the process is killed if it is not ready by then. */
  timeoutMs?: number;
  /** Appends everything it prints to this file (its folder is created). */
  logFile?: string;
  /** How much output to keep in memory (default 100 000 characters). */
  keepOutput?: number;
}

/** Starts `node --import tsx <script>` from the repository root and waits until it is ready. */
export function spawnTsx(o: SpawnOptions): Promise<Proc> {
  let log: fs.WriteStream | undefined;
  if (o.logFile) {
    fs.mkdirSync(path.dirname(o.logFile), { recursive: true });
    log = fs.createWriteStream(o.logFile);
  }
  const child = spawn(process.execPath, ['--import', 'tsx', o.script, ...(o.args ?? [])], {
    cwd: ROOT, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = o.keepOutput ?? 100_000;
  let out = '';
  let gone = false;
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => {
    gone = true;
    log?.end(`\n[${o.name}] exited code=${code} signal=${signal}\n`);
    r(code);
  }));
  const proc: Proc = {
    name: o.name, child, exited,
    alive: () => !gone,
    output: () => out,
    rssMb: () => rssMbOf(gone ? undefined : child.pid),
    async stop(graceMs = 15_000) {
      if (gone) return;
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(hard);
    },
  };
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${o.name} (${o.script}) was not ready within ${o.timeoutMs ?? 30_000} ms:\n${out.slice(-3000)}`));
    }, o.timeoutMs ?? 30_000);
    const onData = (d: Buffer) => {
      log?.write(d);
      if (out.length < keep) out += d.toString();
      if (!ready && o.ready.test(out)) {
        ready = true;
        clearTimeout(timer);
        resolve(proc);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`${o.name} (${o.script}) exited with ${code} before it was ready:\n${out.slice(-3000)}`));
    });
  });
}

export function rssMbOf(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export const API_READY = /Troupe is running/;
export const WORKER_READY = /Troupe worker (\S+) started/;

/** For the mocha tests: info logs, so `output()` shows what the process said. */
export const startWorker = (env: Record<string, string>) =>
  spawnTsx({ name: 'worker', script: 'workers/main.ts', env: { TROUPE_LOG_LEVEL: 'info', ...env }, ready: WORKER_READY });
export const startApi = (env: Record<string, string>) =>
  spawnTsx({ name: 'api', script: 'src/main.ts', args: ['--api-only'], env: { TROUPE_LOG_LEVEL: 'info', ...env }, ready: API_READY });
