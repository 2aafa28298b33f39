/**
 * The processes and services the faults act on: api and worker processes (real `tsx` processes,
 * each logging to results/logs/), and the machine's Redis and Postgres, which the suite restarts
 * the way scripts/setup.sh starts them, always bringing them back even when a step fails.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { API_READY, ROOT, spawnTsx, WORKER_READY, type Proc as KitProc } from '../support/processes.js';
import { sleep } from '../support/wait.js';
import { procEnv } from './env.js';

const run = promisify(execFile);
export const LOG_DIR = path.join(ROOT, 'test/faults/results/logs');

// The kit's (test/support), shared with the mocha suite and the benchmark.
export { freePort, ROOT } from '../support/processes.js';
export { sleep } from '../support/wait.js';

export interface Proc extends KitProc {
  /** The worker id it printed (`instance:pid:rand`), for workers. */
  workerId?: string;
}

let seq = 0;
/** Empties the log directory (once per run). */
export function resetLogs() {
  fs.rmSync(LOG_DIR, { recursive: true, force: true });
  fs.mkdirSync(LOG_DIR, { recursive: true });
}

/** A process of the run, logging to results/logs/NNN-<name>.log; killed if not ready in time. */
export async function spawnProc(name: string, script: string, args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 45_000): Promise<Proc> {
  const logName = `${String(++seq).padStart(3, '0')}-${name}.log`;
  try {
    const proc: Proc = await spawnTsx({ name, script, args, env: { ...procEnv, ...env }, ready, timeoutMs, logFile: path.join(LOG_DIR, logName), keepOutput: 20_000 });
    const m = WORKER_READY.exec(proc.output());
    if (m) proc.workerId = m[1];
    return proc;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(log ${logName})`, { cause: err });
  }
}

/** An api process on a fixed port (so a restarted one takes the old one's place) and N workers. */
export class Cluster {
  api?: Proc;
  workers: Proc[] = [];
  readonly all: Proc[] = [];
  constructor(readonly port: number, readonly env: Record<string, string> = {}) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async startApi(): Promise<Proc> {
    const p = await spawnProc(`api-${this.port}`, 'src/main.ts', ['--api-only'], { ...this.env, PORT: String(this.port) }, API_READY);
    this.api = p;
    this.all.push(p);
    return p;
  }

  async startWorker(): Promise<Proc> {
    const p = await spawnProc('worker', 'workers/main.ts', [], this.env, WORKER_READY);
    this.workers.push(p);
    this.all.push(p);
    return p;
  }

  liveWorkers(): Proc[] {
    return this.workers.filter((w) => w.alive());
  }

  async ensureWorkers(n: number): Promise<void> {
    this.workers = this.liveWorkers();
    while (this.workers.length < n) await this.startWorker();
  }

  /** Stops the api (SIGTERM: graceful; SIGKILL: crash) and starts a new one on the same port. */
  async restartApi(signal: 'SIGTERM' | 'SIGKILL', downMs = 0): Promise<{ downFor: number; exitMs: number; exitCode: number | null }> {
    const t0 = Date.now();
    let exitCode: number | null = null;
    if (this.api?.alive()) {
      this.api.child.kill(signal);
      exitCode = await this.api.exited;
    }
    const exitMs = Date.now() - t0;
    if (downMs) await sleep(downMs);
    // The port may linger for a moment after a crash.
    for (let i = 0; ; i++) {
      try {
        await this.startApi();
        break;
      } catch (err) {
        if (i >= 5 || !/EADDRINUSE/.test(String(err))) throw err;
        await sleep(500);
      }
    }
    return { downFor: Date.now() - t0, exitMs, exitCode };
  }

  async stopAll(): Promise<void> {
    for (const p of this.all) if (p.alive()) p.child.kill('SIGKILL');
    await Promise.all(this.all.map((p) => p.exited));
  }
}

/** What brings a service back if the runner is interrupted in the middle of restarting it. */
const restorers = new Set<() => void>();

/** Kills every process this run started, even if the runner itself is interrupted. */
export function killOnExit(clusters: () => Cluster[]) {
  const kill = () => {
    for (const restore of restorers) {
      try {
        restore();
      } catch {
        /* best effort */
      }
    }
    for (const c of clusters()) for (const p of c.all) if (p.alive()) p.child.kill('SIGKILL');
  };
  process.on('exit', kill);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      kill();
      process.exit(130);
    });
  }
}

/**
 * Restarting Redis or Postgres disturbs whatever else uses them: on a shared dev machine, wait
 * (bounded) for other test or benchmark runs to finish first. TROUPE_FAULTS_NO_WAIT=1 skips this.
 */
export async function waitForQuiet(log: (m: string) => void, maxMs = 180_000): Promise<void> {
  if (process.env.TROUPE_FAULTS_NO_WAIT) return;
  const deadline = Date.now() + maxMs;
  let said = false;
  for (;;) {
    const { stdout } = await run('ps', ['-eo', 'pid,args']).catch(() => ({ stdout: '' }));
    const others = stdout.split('\n').filter((l) => /node_modules\/\.bin\/mocha|bench\/run\.ts/.test(l));
    if (!others.length || Date.now() > deadline) return;
    if (!said) log(`waiting for other runs to finish before restarting a shared service: ${others.map((l) => l.trim().slice(0, 80)).join(' | ')}`);
    said = true;
    await sleep(2000);
  }
}

// --- Redis ------------------------------------------------------------------------------------

async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', '6379', ...args], { timeout: 10_000 });
  return stdout.trim();
}

export async function redisUp(): Promise<boolean> {
  return redisCli('ping').then((s) => s === 'PONG', () => false);
}

/**
 * `redis-cli shutdown` (with appendonly, Redis fsyncs the AOF first), then start it again exactly
 * as scripts/setup.sh does, in the directory the running server uses (so its data comes back).
 * Whatever happens, Redis is running again when this returns.
 */
export async function restartRedis(downMs: number): Promise<{ downFor: number }> {
  const cfg = async (name: string) => (await redisCli('config', 'get', name)).split('\n')[1] ?? '';
  const dir = (await cfg('dir').catch(() => '')) || path.join(ROOT, '.troupe/redis');
  const logfile = (await cfg('logfile').catch(() => '')) || path.join(dir, 'redis.log');
  const appendonly = await cfg('appendonly').catch(() => 'yes');
  if (appendonly !== 'yes') throw new Error(`Redis runs without appendonly (${appendonly}): refusing to restart it (its data would be lost)`);
  const t0 = Date.now();
  const restore = () => void execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--appendonly', 'yes', '--dir', dir, '--logfile', logfile]);
  restorers.add(restore);
  try {
    await redisCli('shutdown').catch(() => {}); // the connection closing is the success case
    for (let i = 0; i < 100 && (await redisUp()); i++) await sleep(100);
    if (downMs) await sleep(downMs);
  } finally {
    await startRedis(dir, logfile);
    restorers.delete(restore);
  }
  return { downFor: Date.now() - t0 };
}

async function startRedis(dir: string, logfile: string): Promise<void> {
  if (await redisUp()) return;
  fs.mkdirSync(dir, { recursive: true });
  await run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--appendonly', 'yes', '--dir', dir, '--logfile', logfile]);
  for (let i = 0; i < 100; i++) {
    if (await redisUp()) {
      // Loading the AOF answers LOADING to everything else; wait until it is done.
      for (let j = 0; j < 100; j++) {
        const info = await redisCli('info', 'persistence').catch(() => '');
        if (/loading:0/.test(info)) return;
        await sleep(100);
      }
      return;
    }
    await sleep(100);
  }
  throw new Error(`Redis did not come back (log: ${logfile})`);
}

/** Deletes every key under a prefix (the run's own: nothing else on the server is touched). */
export async function wipeRedisPrefix(prefix: string): Promise<number> {
  const r = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 3 });
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

// --- Postgres ---------------------------------------------------------------------------------

const sudo = (cmd: string, args: string[]) => (process.getuid?.() === 0 ? run(cmd, args, { timeout: 60_000 }) : run('sudo', [cmd, ...args], { timeout: 60_000 }));

async function pgCluster(): Promise<[string, string]> {
  const { stdout } = await run('pg_lsclusters', ['-h']);
  const lines = stdout.trim().split('\n').map((l) => l.split(/\s+/));
  const online = lines.find((l) => l[2] === '5432') ?? lines[0];
  if (!online) throw new Error('pg_lsclusters lists no cluster');
  return [online[0], online[1]];
}

export async function pgUp(): Promise<boolean> {
  return run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432']).then(() => true, () => false);
}

/** `pg_ctlcluster <ver> <name> stop`, optionally stay down, then start; always started again. */
export async function restartPostgres(downMs: number): Promise<{ downFor: number; cluster: string }> {
  const [ver, name] = await pgCluster();
  const t0 = Date.now();
  const restore = () => void (process.getuid?.() === 0 ? execFileSync('pg_ctlcluster', [ver, name, 'start']) : execFileSync('sudo', ['pg_ctlcluster', ver, name, 'start']));
  restorers.add(restore);
  try {
    if (downMs) {
      await sudo('pg_ctlcluster', [ver, name, 'stop', '-m', 'fast']);
      await sleep(downMs);
    } else {
      await sudo('pg_ctlcluster', [ver, name, 'restart', '-m', 'fast']);
    }
  } finally {
    if (!(await pgUp())) await sudo('pg_ctlcluster', [ver, name, 'start']).catch(() => {});
    for (let i = 0; i < 100 && !(await pgUp()); i++) await sleep(200);
    restorers.delete(restore);
  }
  return { downFor: Date.now() - t0, cluster: `${ver}/${name}` };
}

// --- Docker -----------------------------------------------------------------------------------

/** Removes the run's containers (labelled with its instance). */
export async function removeContainers(instance: string): Promise<number> {
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=troupe.instance=${instance}`]);
  const ids = stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await run('docker', ['rm', '-f', ...ids.slice(i, i + 50)]).catch(() => {});
  return ids.length;
}
