/**
 * Loaded first by run.ts, before anything reads src/config.ts: the fault suite runs on services
 * of its own, a redis-server and a PostgreSQL cluster it starts on free ports with their data
 * under .troupe/faults-<tag>/ (test/faults/services.ts), so restarting them disturbs nobody else
 * on the machine; and on its own database, Redis key prefix and runtime instance label (reapers
 * only remove containers of their own instance), so it never touches a developer's data.
 */
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const tag = crypto.randomBytes(3).toString('hex');
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** A port nothing listens on now (asked of the kernel, synchronously: config reads it at import). */
function freePortSync(): number {
  const js = "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})";
  return Number(execFileSync(process.execPath, ['-e', js], { encoding: 'utf8' }).trim());
}

/** Where the suite's own services keep their data (removed at the end of the run). */
export const SERVICES_DIR = path.join(ROOT, '.troupe', `faults-${tag}`);
export const PG_PORT = freePortSync();
export const REDIS_PORT = (() => {
  for (;;) {
    const p = freePortSync();
    if (p !== PG_PORT) return p;
  }
})();
export const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;

export const FAULTS_DB_NAME = process.env.TROUPE_FAULTS_DB ?? 'troupe_faults';
/** The suite's own cluster: the troupe role is its superuser. */
export const ADMIN_DB_URL = `postgres://troupe:troupe@127.0.0.1:${PG_PORT}/postgres`;
export const FAULTS_DB_URL = ADMIN_DB_URL.replace(/\/[^/]*$/, `/${FAULTS_DB_NAME}`);

process.env.DATABASE_URL = FAULTS_DB_URL;
process.env.REDIS_URL = REDIS_URL;
process.env.TROUPE_REDIS_PREFIX = `troupe-faults-${tag}`;
process.env.TROUPE_INSTANCE = `faults-${tag}`;
process.env.TROUPE_LOG_LEVEL ??= 'info';
process.env.TROUPE_DEFAULT_IMAGE ??= 'troupe-sandbox-minimal:latest';

/** What every api and worker process of the suite runs with. */
export const procEnv: Record<string, string> = {
  DATABASE_URL: FAULTS_DB_URL,
  REDIS_URL,
  TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX,
  TROUPE_INSTANCE: process.env.TROUPE_INSTANCE,
  TROUPE_DEFAULT_IMAGE: process.env.TROUPE_DEFAULT_IMAGE,
  // A killed worker's session moves on after ~2 s instead of 30.
  TROUPE_JOB_LOCK_MS: '2000',
  TROUPE_REAPER_INTERVAL_MS: '5000',
  TROUPE_SHUTDOWN_TIMEOUT_MS: '5000',
  // Idle auto-pause is housekeeping, not a fault: on a loaded machine a scenario can outlast the
  // 5-minute default, and sessions the load left idle would be paused under the verdict's feet.
  TROUPE_IDLE_TIMEOUT_SECONDS: '86400',
  // The load puts many sessions in few projects; quotas are tested elsewhere (security-sandbox-caps).
  TROUPE_PROJECT_MAX_SANDBOXES: '0',
  TROUPE_PROJECT_MAX_RUNNING_SESSIONS: '0',
  TROUPE_LOG_LEVEL: 'info',
  HOST: '127.0.0.1',
  // The suite floods the api from one address on purpose (load, fuzz with bad tokens, retries
  // during outages): rate limits off, so a fault is never hidden behind (or mistaken for) a 429.
  // test/rate-limits.test.ts covers the limits.
  TROUPE_RATE_LIMIT_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_PER_IP_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_SESSIONS_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_PAIRING_PER_MINUTE: '0',
};
