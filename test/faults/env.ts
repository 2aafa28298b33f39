/**
 * Loaded first by run.ts, before anything reads src/config.ts: the fault suite runs on its own
 * database, Redis key prefix and runtime instance label, so it never touches a developer's data
 * (or another run's containers: reapers only remove containers of their own instance).
 */
import crypto from 'node:crypto';

const tag = crypto.randomBytes(3).toString('hex');

export const FAULTS_DB_NAME = process.env.TROUPE_FAULTS_DB ?? 'troupe_faults';
export const ADMIN_DB_URL = process.env.TROUPE_FAULTS_ADMIN_DB_URL ?? 'postgres://troupe:troupe@127.0.0.1:5432/troupe';
export const FAULTS_DB_URL = ADMIN_DB_URL.replace(/\/[^/]*$/, `/${FAULTS_DB_NAME}`);

process.env.DATABASE_URL = FAULTS_DB_URL;
process.env.TROUPE_REDIS_PREFIX = `troupe-faults-${tag}`;
process.env.TROUPE_INSTANCE = `faults-${tag}`;
process.env.TROUPE_LOG_LEVEL ??= 'info';
process.env.TROUPE_DEFAULT_IMAGE ??= 'troupe-sandbox-minimal:latest';

/** What every api and worker process of the suite runs with. */
export const procEnv: Record<string, string> = {
  DATABASE_URL: FAULTS_DB_URL,
  TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX,
  TROUPE_INSTANCE: process.env.TROUPE_INSTANCE,
  TROUPE_DEFAULT_IMAGE: process.env.TROUPE_DEFAULT_IMAGE,
  // A killed worker's session moves on after ~2 s instead of 30.
  TROUPE_JOB_LOCK_MS: '2000',
  TROUPE_REAPER_INTERVAL_MS: '5000',
  TROUPE_SHUTDOWN_TIMEOUT_MS: '5000',
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
