/**
 * The processes and services the faults act on: api and worker processes (real `tsx` processes,
 * each logging to results/logs/), and the run's own redis-server and PostgreSQL, which it starts,
 * restarts (always bringing them back, even when a step fails) and removes at the end.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { API_READY, ROOT, spawnTsx, WORKER_READY, type Proc as KitProc } from '../support/processes.js';
import { sleep } from '../support/wait.js';
import { PG_PORT, procEnv, REDIS_PORT, REDIS_URL, SERVICES_DIR } from './env.js';

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

/**
 * A process of the run, logging to results/logs/NNN-<name>.log; killed if not ready in time. The
 * wait is generous: on a loaded machine tsx takes tens of seconds to load a worker.
 */
export async function spawnProc(name: string, script: string, args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 150_000): Promise<Proc> {
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
/** Stops the run's own services, last, if the runner is interrupted. */
let finalCleanup: (() => void) | undefined;

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
    finalCleanup?.();
    finalCleanup = undefined;
  };
  process.on('exit', kill);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      kill();
      process.exit(130);
    });
  }
}

// --- The suite's own services -------------------------------------------------------------------
// A redis-server and a PostgreSQL cluster of the run's own (ports and data dir from env.ts), so the
// faults restart them and nothing else: the machine's shared 5432 and 6379 are never touched.

const PG_BIN = process.env.TROUPE_FAULTS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PG_DATA = path.join(SERVICES_DIR, 'pg');
const PG_SOCKETS = path.join(SERVICES_DIR, 'pg-sockets');
const REDIS_DIR = path.join(SERVICES_DIR, 'redis');
const PG_LOG = () => path.join(LOG_DIR, 'postgres.log');
const REDIS_LOG = () => path.join(LOG_DIR, 'redis.log');

/** Runs a PostgreSQL binary as the `postgres` OS user (it refuses to run as root). */
const asPostgres = (bin: string, args: string[]) => {
  const cmd = [path.join(PG_BIN, bin), ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return process.getuid?.() === 0 ? ['su', ['postgres', '-s', '/bin/sh', '-c', cmd]] as const : ['sh', ['-c', cmd]] as const;
};
const pgCtlArgs = (action: 'start' | 'stop', mode = 'fast') => action === 'start'
  ? ['-D', PG_DATA, '-l', PG_LOG(), '-w', '-t', '60', '-o', `-p ${PG_PORT} -k ${PG_SOCKETS} -c listen_addresses=127.0.0.1 -c max_connections=300`, 'start']
  : ['-D', PG_DATA, '-w', '-t', '60', '-m', mode, 'stop'];
const pgCtl = (action: 'start' | 'stop', mode?: string) => {
  const [cmd, args] = asPostgres('pg_ctl', pgCtlArgs(action, mode));
  return run(cmd, [...args], { timeout: 90_000 });
};
const pgCtlSync = (action: 'start' | 'stop', mode?: string) => {
  const [cmd, args] = asPostgres('pg_ctl', pgCtlArgs(action, mode));
  execFileSync(cmd, [...args], { stdio: 'ignore', timeout: 90_000 });
};
const redisArgs = () => ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--appendonly', 'yes', '--save', '', '--dir', REDIS_DIR, '--logfile', REDIS_LOG()];

/** Starts the run's redis-server and PostgreSQL (initdb first), with the troupe role as superuser. */
export async function startOwnServices(log: (m: string) => void): Promise<void> {
  fs.mkdirSync(REDIS_DIR, { recursive: true });
  fs.mkdirSync(PG_SOCKETS, { recursive: true });
  if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres:postgres', PG_SOCKETS]);
  fs.mkdirSync(PG_DATA, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres:postgres', PG_DATA]);
  fs.closeSync(fs.openSync(PG_LOG(), 'a'));
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', PG_LOG()]);
  const [cmd, args] = asPostgres('initdb', ['-D', PG_DATA, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8']);
  await run(cmd, [...args], { timeout: 120_000 });
  await pgCtl('start');
  finalCleanup = stopOwnServicesSync;
  const [psqlCmd, psqlArgs] = asPostgres('psql', ['-h', PG_SOCKETS, '-p', String(PG_PORT), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qc', "CREATE ROLE troupe LOGIN SUPERUSER PASSWORD 'troupe'"]);
  await run(psqlCmd, [...psqlArgs], { timeout: 30_000 });
  await startRedis();
  log(`own services: redis-server on 127.0.0.1:${REDIS_PORT}, PostgreSQL on 127.0.0.1:${PG_PORT} (data in ${path.relative(ROOT, SERVICES_DIR)})`);
}

/** Stops both and removes their data (their logs stay in results/logs/). */
export async function stopOwnServices(): Promise<void> {
  finalCleanup = undefined;
  await redisCli('shutdown', 'nosave').catch(() => {});
  await pgCtl('stop', 'immediate').catch(() => {});
  fs.rmSync(SERVICES_DIR, { recursive: true, force: true });
}

/** The same, from an exit handler (synchronous). */
function stopOwnServicesSync(): void {
  try {
    execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), 'shutdown', 'nosave'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* already down */
  }
  try {
    pgCtlSync('stop', 'immediate');
  } catch {
    /* already down */
  }
  fs.rmSync(SERVICES_DIR, { recursive: true, force: true });
}

// --- Redis ------------------------------------------------------------------------------------

async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(REDIS_PORT), ...args], { timeout: 10_000 });
  return stdout.trim();
}

export async function redisUp(): Promise<boolean> {
  return redisCli('ping').then((s) => s === 'PONG', () => false);
}

/**
 * `redis-cli shutdown` (with appendonly, Redis fsyncs the AOF first), then start it again with
 * the same data directory (so its data comes back). Only the run's own redis-server. Whatever
 * happens, it is running again when this returns.
 */
export async function restartRedis(downMs: number): Promise<{ downFor: number }> {
  const appendonly = (await redisCli('config', 'get', 'appendonly').catch(() => '')).split('\n')[1] ?? 'yes';
  if (appendonly !== 'yes') throw new Error(`Redis runs without appendonly (${appendonly}): refusing to restart it (its data would be lost)`);
  const t0 = Date.now();
  const restore = () => void execFileSync('redis-server', redisArgs());
  restorers.add(restore);
  try {
    await redisCli('shutdown').catch(() => {}); // the connection closing is the success case
    for (let i = 0; i < 100 && (await redisUp()); i++) await sleep(100);
    if (downMs) await sleep(downMs);
  } finally {
    await startRedis();
    restorers.delete(restore);
  }
  return { downFor: Date.now() - t0 };
}

async function startRedis(): Promise<void> {
  if (await redisUp()) return;
  await run('redis-server', redisArgs());
  for (let i = 0; i < 300; i++) {
    if (await redisUp()) {
      // Loading the AOF answers LOADING to everything else; wait until it is done.
      for (let j = 0; j < 300; j++) {
        const info = await redisCli('info', 'persistence').catch(() => '');
        if (/loading:0/.test(info)) return;
        await sleep(100);
      }
      return;
    }
    await sleep(100);
  }
  throw new Error(`Redis did not come back (log: ${REDIS_LOG()})`);
}

/** Deletes every key under a prefix (the run's own: nothing else on the server is touched). */
export async function wipeRedisPrefix(prefix: string): Promise<number> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
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

export async function pgUp(): Promise<boolean> {
  return run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(PG_PORT)]).then(() => true, () => false);
}

/** Stops the run's own PostgreSQL (fast shutdown), optionally stays down, then starts it; always started again. */
export async function restartPostgres(downMs: number): Promise<{ downFor: number; cluster: string }> {
  const t0 = Date.now();
  const restore = () => pgCtlSync('start');
  restorers.add(restore);
  try {
    await pgCtl('stop', 'fast');
    if (downMs) await sleep(downMs);
  } finally {
    if (!(await pgUp())) await pgCtl('start').catch(() => {});
    for (let i = 0; i < 300 && !(await pgUp()); i++) await sleep(200);
    restorers.delete(restore);
  }
  return { downFor: Date.now() - t0, cluster: `own, 127.0.0.1:${PG_PORT}` };
}

// --- Docker -----------------------------------------------------------------------------------

/** Removes the run's containers (labelled with its instance). */
export async function removeContainers(instance: string): Promise<number> {
  const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=troupe.instance=${instance}`]);
  const ids = stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await run('docker', ['rm', '-f', ...ids.slice(i, i + 50)]).catch(() => {});
  return ids.length;
}
