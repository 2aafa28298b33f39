/**
 * What the benchmark runs against: a fresh `troupe_bench` database, its own Redis prefix and
 * container label, and the api and the session worker as two real child processes (so their
 * memory can be told apart and the clients in this process do not share their event loop).
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import pg from 'pg';
import { TEST_IMAGE } from '../../test/support/http.js';
import { API_READY, freePort, ROOT, spawnTsx, WORKER_READY, type Proc } from '../../test/support/processes.js';
import { log, mapLimit, sleep } from './util.js';

// Processes come from the kit the mocha suite and the fault suite share (test/support/processes.ts).
export { freePort, ROOT, rssMbOf, type Proc } from '../../test/support/processes.js';

export const execFileP = promisify(execFile);
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

export const PREFIX = process.env.TROUPE_REDIS_PREFIX || 'troupe-bench';
export const INSTANCE = process.env.TROUPE_INSTANCE || 'bench';
export const IMAGE = TEST_IMAGE;
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
/** Every rate limit off (0), for processes a harness floods on purpose. */
export const RATE_LIMITS_OFF: Record<string, string> = {
  TROUPE_RATE_LIMIT_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_PER_IP_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_SESSIONS_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_PAIRING_PER_MINUTE: '0',
};
export const JWT_SECRET = process.env.TROUPE_JWT_SECRET || 'troupe-bench-secret-not-for-production';
const ADMIN_DB_URL = process.env.BENCH_ADMIN_DATABASE_URL || 'postgres://troupe:troupe@127.0.0.1:5432/troupe';
/** Set BENCH_DATABASE_URL to use an existing database as is (it is migrated, never dropped). */
export const DATABASE_URL = process.env.BENCH_DATABASE_URL || 'postgres://troupe:troupe@127.0.0.1:5432/troupe_bench';

export const docker = new Docker();

/** Drops and recreates troupe_bench (the troupe role has CREATEDB), then migrates it. */
export async function prepareDatabase(): Promise<void> {
  if (!process.env.BENCH_DATABASE_URL) {
    const name = new URL(DATABASE_URL).pathname.slice(1);
    const admin = new pg.Client({ connectionString: ADMIN_DB_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
  }
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts', 'latest'], {
    cwd: ROOT, env: { ...process.env, DATABASE_URL, TROUPE_LOG_LEVEL: 'warn' },
  });
  log(`database ${new URL(DATABASE_URL).pathname.slice(1)}: ${stdout.trim().replace(/^\[migrate\]\s*/, '')}`);
}

/** Deletes every key under the bench prefix: stale queues from an aborted run must not wake up. */
export async function flushPrefix(): Promise<number> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  return n;
}

/** Force-removes every container labelled with the bench instance (sessions' and baselines'). */
export async function removeBenchContainers(): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`troupe.instance=${INSTANCE}`] } });
  await mapLimit(list, 8, (c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {}));
  return list.length;
}

export async function machineInfo() {
  let dockerVersion = 'unknown';
  try {
    dockerVersion = (await execFileP('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  } catch {
    /* reported as unknown */
  }
  return {
    cpus: os.cpus().length,
    memory_gb: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    docker_version: dockerVersion,
  };
}

/** Starts `node --import tsx <script>`; resolves when `ready` shows in its output; logs go to bench/results/<name>.log. */
export function startProcess(name: string, script: string, args: string[], env: Record<string, string>, ready: RegExp): Promise<Proc> {
  return spawnTsx({ name, script, args, env, ready, timeoutMs: 60_000, logFile: path.join(RESULTS_DIR, `${name}.log`), keepOutput: 20_000 });
}

export interface Stack {
  url: string;
  api: Proc;
  worker: Proc;
  /** Throws if a child process has died (a scenario then fails instead of waiting on it). */
  assertAlive(): void;
  stop(): Promise<void>;
}

/** The api (src/main.ts --api-only) and a session worker (workers/main.ts), on the bench DB, prefix and instance. */
export async function startStack(opts: { workerConcurrency: number }): Promise<Stack> {
  const port = await freePort();
  const env: Record<string, string> = {
    DATABASE_URL,
    REDIS_URL,
    TROUPE_REDIS_PREFIX: PREFIX,
    TROUPE_INSTANCE: INSTANCE,
    TROUPE_JWT_SECRET: JWT_SECRET,
    TROUPE_DEFAULT_IMAGE: IMAGE,
    TROUPE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
    TROUPE_WORKER_CONCURRENCY: String(opts.workerConcurrency),
    // Nothing of ours sits idle that long; the reaper must not pause sessions mid-scenario.
    TROUPE_IDLE_TIMEOUT_SECONDS: '3600',
    // The concurrency scenario runs hundreds of sessions in one project: no per-project quotas.
    TROUPE_PROJECT_MAX_SANDBOXES: '0',
    TROUPE_PROJECT_MAX_RUNNING_SESSIONS: '0',
    // The bench is one client creating sessions as fast as the stack takes them, from one address:
    // rate limits off, so it measures the runtime and not the limiter (test/rate-limits.test.ts covers them).
    ...RATE_LIMITS_OFF,
    PORT: String(port),
    HOST: '127.0.0.1',
  };
  const started = await Promise.allSettled([
    startProcess('api', 'src/main.ts', ['--api-only'], env, API_READY),
    startProcess('worker', 'workers/main.ts', [], env, WORKER_READY),
  ]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    // Don't leave the one that did start behind.
    for (const s of started) if (s.status === 'fulfilled') await s.value.stop();
    throw (failed as PromiseRejectedResult).reason;
  }
  const [api, worker] = started.map((s) => (s as PromiseFulfilledResult<Proc>).value);
  const stack: Stack = {
    url: `http://127.0.0.1:${port}`,
    api,
    worker,
    assertAlive() {
      for (const p of [api, worker]) {
        if (!p.alive()) throw new Error(`the ${p.name} process died (see bench/results/${p.name}.log)`);
      }
    },
    async stop() {
      await Promise.all([worker.stop(), api.stop()]);
    },
  };
  await sleep(200);
  return stack;
}
