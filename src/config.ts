/**
 * All configuration comes from environment variables, read and validated here once at start-up.
 * Every bad value is reported together, with what was expected, before anything connects.
 */
import os from 'node:os';
import crypto from 'node:crypto';
import { parseOutboundAllow, type AllowRule } from './lib/outbound-rules.js';

export class ConfigError extends Error {}

const DEV_JWT_SECRET = 'troupe-dev-secret-change-me';

export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  databaseUrl: string;
  redisUrl: string;
  /** Prefix of every Redis key and channel, so several deployments (or the tests) share a Redis. */
  redisPrefix: string;
  dockerHost?: string;
  jwtSecret: string;
  jwtSecretIsDevDefault: boolean;
  /** 32-byte key for AES-256-GCM encryption of secrets at rest. */
  secretKey: Buffer;
  secretKeyIsDevDefault: boolean;
  logLevel: string;
  /** Names this runtime instance in container labels; the reaper only touches its own. */
  instance: string;
  workerConcurrency: number;
  idleTimeoutSeconds: number;
  defaultImage: string;
  sandboxMemoryMb: number;
  sandboxCpus: number;
  sandboxPidsLimit: number;
  toolTimeoutSeconds: number;
  /** Warm pool: paused containers kept ready per sandbox shape per worker (0 = off), and their max age. */
  poolSize: number;
  poolMaxAgeSeconds: number;
  bodyLimitBytes: number;
  /** BullMQ lock duration: how soon a dead worker's session is taken over by another. */
  jobLockMs: number;
  reaperIntervalMs: number;
  /** User ids (JWT `sub`) allowed on admin surfaces: /debug/events, /admin/queues. */
  adminUsers: string[];
  shutdownTimeoutMs: number;
  /** Webhook delivery: attempts, first retry delay (doubling), request timeout. */
  webhookAttempts: number;
  webhookBackoffMs: number;
  webhookTimeoutMs: number;
  /** How long GET /api/v1/updates can look back. */
  updatesRetentionHours: number;
  pairingCodeTtlSeconds: number;
  /** How long the api waits for a worker to acknowledge a command before answering 503 (caps every command's own limit). */
  commandTimeoutMs?: number;
  /** Bytes of live output (deltas) kept per session in Redis for mid-message replay; the oldest go first. */
  liveBufferBytes?: number;
  /** TROUPE_OUTBOUND_ALLOW: destinations the outbound guard lets through although private (lib/outbound.ts). */
  outboundAllow: AllowRule[];
  /** TROUPE_SKILL_HOSTS: the hosts a skill's source_url may name (and redirect to). */
  skillHosts: string[];
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const int = (name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer between ${min} and ${max}`);
      return def;
    }
    return n;
  };
  const num = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected a number between ${min} and ${max}`);
      return def;
    }
    return n;
  };
  const url = (name: string, def: string, protocols: string[]): string => {
    const raw = env[name] || def;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error();
    } catch {
      problems.push(`${name}: expected a ${protocols.join(' or ')} URL, got ${JSON.stringify(raw.replace(/:[^:@/]*@/, ':***@'))}`);
    }
    return raw;
  };

  const port = int('PORT', 3000, 0, 65535);
  const logLevel = env.TROUPE_LOG_LEVEL || 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`TROUPE_LOG_LEVEL=${JSON.stringify(logLevel)}: expected fatal|error|warn|info|debug|trace|silent`);
  }

  let secretKey: Buffer;
  const rawKey = env.TROUPE_SECRET_KEY;
  if (rawKey) {
    const buf = /^[0-9a-fA-F]{64}$/.test(rawKey) ? Buffer.from(rawKey, 'hex') : Buffer.from(rawKey, 'base64');
    if (buf.length !== 32) problems.push('TROUPE_SECRET_KEY: expected 32 bytes as 64 hex characters or base64');
    secretKey = buf.length === 32 ? buf : Buffer.alloc(32);
  } else {
    // Dev default only: derived from a fixed string so local data stays readable across restarts.
    secretKey = crypto.createHash('sha256').update('troupe-dev-secret-key').digest();
  }

  const jwtSecret = env.TROUPE_JWT_SECRET || DEV_JWT_SECRET;
  if (env.TROUPE_JWT_SECRET !== undefined && env.TROUPE_JWT_SECRET.length < 16) {
    problems.push('TROUPE_JWT_SECRET: expected at least 16 characters');
  }

  const cfg: Config = {
    port,
    host: env.HOST || '0.0.0.0',
    publicUrl: env.TROUPE_PUBLIC_URL || `http://localhost:${port}`,
    databaseUrl: url('DATABASE_URL', 'postgres://troupe:troupe@127.0.0.1:5432/troupe', ['postgres:', 'postgresql:']),
    redisUrl: url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisPrefix: env.TROUPE_REDIS_PREFIX || 'troupe',
    dockerHost: env.DOCKER_HOST || undefined,
    jwtSecret,
    jwtSecretIsDevDefault: !env.TROUPE_JWT_SECRET,
    secretKey,
    secretKeyIsDevDefault: !rawKey,
    logLevel,
    instance: env.TROUPE_INSTANCE || os.hostname(),
    workerConcurrency: int('TROUPE_WORKER_CONCURRENCY', 20, 1, 1000),
    idleTimeoutSeconds: int('TROUPE_IDLE_TIMEOUT_SECONDS', 300, 1),
    defaultImage: env.TROUPE_DEFAULT_IMAGE || 'troupe-sandbox-default:latest',
    sandboxMemoryMb: int('TROUPE_SANDBOX_MEMORY_MB', 512, 16, 1024 * 1024),
    sandboxCpus: num('TROUPE_SANDBOX_CPUS', 1, 0.01, 256),
    sandboxPidsLimit: int('TROUPE_SANDBOX_PIDS_LIMIT', 256, 8, 1_000_000),
    toolTimeoutSeconds: int('TROUPE_TOOL_TIMEOUT_SECONDS', 120, 1, 24 * 3600),
    poolSize: int('TROUPE_POOL_SIZE', 2, 0, 100),
    poolMaxAgeSeconds: int('TROUPE_POOL_MAX_AGE_SECONDS', 600, 10),
    bodyLimitBytes: int('TROUPE_BODY_LIMIT_BYTES', 1024 * 1024, 1024),
    jobLockMs: int('TROUPE_JOB_LOCK_MS', 30_000, 1000),
    reaperIntervalMs: int('TROUPE_REAPER_INTERVAL_MS', 10_000, 100),
    adminUsers: (env.TROUPE_ADMIN_USERS || 'admin').split(',').map((s) => s.trim()).filter(Boolean),
    shutdownTimeoutMs: int('TROUPE_SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    webhookAttempts: int('TROUPE_WEBHOOK_ATTEMPTS', 8, 1, 50),
    webhookBackoffMs: int('TROUPE_WEBHOOK_BACKOFF_MS', 2000, 10),
    webhookTimeoutMs: int('TROUPE_WEBHOOK_TIMEOUT_MS', 10_000, 100),
    updatesRetentionHours: int('TROUPE_UPDATES_RETENTION_HOURS', 168, 1),
    pairingCodeTtlSeconds: int('TROUPE_PAIRING_CODE_TTL_SECONDS', 600, 5),
    liveBufferBytes: int('TROUPE_LIVE_BUFFER_BYTES', 1024 * 1024, 4096, 256 * 1024 * 1024),
    commandTimeoutMs: env.TROUPE_COMMAND_TIMEOUT_MS ? int('TROUPE_COMMAND_TIMEOUT_MS', 15_000, 100, 600_000) : undefined,
    outboundAllow: parseOutboundAllow(env.TROUPE_OUTBOUND_ALLOW, problems),
    skillHosts: (env.TROUPE_SKILL_HOSTS || 'github.com,raw.githubusercontent.com').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean),
  };
  if (problems.length) {
    throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}\nSee the configuration table in README.md.`);
  }
  return cfg;
}

export const config: Config = loadConfig();
