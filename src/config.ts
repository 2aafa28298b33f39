/**
 * All configuration comes from environment variables. `loadConfig(env)` checks them against one
 * JSON Schema (`envSchema`), reports every bad value together with what was expected, and returns
 * a new, deeply frozen `Config`. It reads nothing but its argument, so tests build their own:
 * `loadConfig({ ...process.env, TROUPE_POOL_SIZE: '0' })`, or pass the one option a component
 * takes; the process-wide `config` below is never changed after start-up (assigning to it throws).
 */
import os from 'node:os';
import crypto from 'node:crypto';
import net from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parseOutboundAllow, type AllowRule } from './lib/outbound-rules.js';
import { parseAllowedImages } from './lib/sandbox-policy.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The JWT secret used when none is set. Public (it is in this file): loopback-only use. */
export const DEV_JWT_SECRET = 'troupe-dev-secret-change-me';
/** The secrets-at-rest key used when none is set, derived from a public string: loopback-only use. */
export const DEV_SECRET_KEY_HEX = crypto.createHash('sha256').update('troupe-dev-secret-key').digest('hex');
/** Secrets anyone can read in this repository or its history; treated exactly like "unset". */
const KNOWN_JWT_SECRETS = new Set([
  DEV_JWT_SECRET,
  'change-me-please-0123456789', // docker-compose.yml's default before it required one
]);

// ---------------------------------------------------------------------------------------------
// The environment, as a JSON Schema. `x-expected` says in words what a value must be (used in
// error messages); `x-secret` keeps a value out of error messages.
// ---------------------------------------------------------------------------------------------
type Prop = Record<string, unknown>;
const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  ({ type: 'integer', minimum: min, maximum: max, default: def }) as const;
const num = (def: number, min: number, max: number) => ({ type: 'number', minimum: min, maximum: max, default: def }) as const;
/** A string with a default; `optional` (no default) leaves the value undefined when unset. */
const str = (def: string, extra: Prop = {}) => ({ type: 'string', minLength: 1, maxLength: 4096, default: def, ...extra }) as const;
const optional = (extra: Prop = {}) => ({ type: 'string', minLength: 1, maxLength: 4096, ...extra }) as const;
const oneOf = <const T extends readonly string[]>(values: T, def: T[number]) => ({ type: 'string', enum: values, default: def }) as const;
const url = (def: string, schemes: string[]) => str(def, {
  format: 'uri',
  pattern: `^(${schemes.join('|')})://`,
  'x-expected': `a ${schemes.map((s) => `${s}://`).join(' or ')} URL`,
  'x-url': true,
});

export const envSchema = {
  type: 'object',
  properties: {
    PORT: int(3000, 0, 65535),
    HOST: str('127.0.0.1', { pattern: '^[^\\s/]+$', 'x-expected': 'a host name or IP address to listen on' }),
    TROUPE_PUBLIC_URL: optional({ pattern: '^https?://', 'x-expected': 'an http:// or https:// URL' }),
    DATABASE_URL: url('postgres://troupe:troupe@127.0.0.1:5432/troupe', ['postgres', 'postgresql']),
    REDIS_URL: url('redis://127.0.0.1:6379', ['redis', 'rediss']),
    TROUPE_REDIS_PREFIX: str('troupe', { maxLength: 200, pattern: '^\\S+$', 'x-expected': 'a prefix without spaces' }),
    DOCKER_HOST: optional(),
    TROUPE_JWT_SECRET: optional({ minLength: 16, 'x-secret': true, 'x-expected': 'at least 16 characters (generate one: openssl rand -hex 32)' }),
    TROUPE_SECRET_KEY: optional({
      pattern: '^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$',
      'x-secret': true,
      'x-expected': '32 bytes as 64 hex characters or base64 (generate one: openssl rand -hex 32)',
    }),
    TROUPE_LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    TROUPE_INSTANCE: optional({ maxLength: 200, pattern: '^\\S+$', 'x-expected': 'a label without spaces' }),
    TROUPE_WORKER_CONCURRENCY: int(20, 1, 1000),
    TROUPE_IDLE_TIMEOUT_SECONDS: int(300, 1),
    TROUPE_DEFAULT_IMAGE: str('troupe-sandbox-default:latest', { maxLength: 300 }),
    TROUPE_SANDBOX_MEMORY_MB: int(512, 16, 1024 * 1024),
    TROUPE_SANDBOX_CPUS: num(1, 0.01, 256),
    TROUPE_SANDBOX_PIDS_LIMIT: int(256, 8, 1_000_000),
    // Deployment-wide ceilings; unset = derived from the host this process runs on (see loadConfig).
    TROUPE_SANDBOX_MAX_MEMORY_MB: { type: 'integer', minimum: 16, maximum: 1024 * 1024 },
    TROUPE_SANDBOX_MAX_CPUS: { type: 'number', minimum: 0.01, maximum: 256 },
    TROUPE_SANDBOX_MAX_PIDS: { type: 'integer', minimum: 8, maximum: 1_000_000 },
    TROUPE_PROJECT_MAX_SANDBOXES: int(50, 0, 1_000_000),
    TROUPE_PROJECT_MAX_RUNNING_SESSIONS: int(20, 0, 1_000_000),
    TROUPE_ALLOWED_IMAGES: optional({ maxLength: 10_000, 'x-expected': 'a comma-separated list of image names (repository, repository:tag) or prefixes ending in *' }),
    TROUPE_ALLOW_BRIDGE_NETWORK: oneOf(['true', 'false'], 'false'),
    TROUPE_TOOL_TIMEOUT_SECONDS: int(120, 1, 24 * 3600),
    TROUPE_POOL_SIZE: int(2, 0, 100),
    TROUPE_POOL_MAX_AGE_SECONDS: int(600, 10),
    TROUPE_BODY_LIMIT_BYTES: int(1024 * 1024, 1024),
    TROUPE_JOB_LOCK_MS: int(30_000, 1000),
    TROUPE_REAPER_INTERVAL_MS: int(10_000, 100),
    TROUPE_ADMIN_USERS: str('admin'),
    TROUPE_SHUTDOWN_TIMEOUT_MS: int(10_000, 0),
    TROUPE_WEBHOOK_ATTEMPTS: int(8, 1, 50),
    TROUPE_WEBHOOK_BACKOFF_MS: int(2000, 10),
    TROUPE_WEBHOOK_TIMEOUT_MS: int(10_000, 100),
    TROUPE_UPDATES_RETENTION_HOURS: int(168, 1),
    TROUPE_PAIRING_CODE_TTL_SECONDS: int(600, 5),
    TROUPE_EXECUTOR: oneOf(['on', 'off'], 'on'),
    TROUPE_LIVE_BUFFER_BYTES: int(1024 * 1024, 4096, 256 * 1024 * 1024),
    TROUPE_COMMAND_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 600_000 },
    TROUPE_OUTBOUND_ALLOW: optional({ maxLength: 10_000, 'x-expected': 'a comma-separated list of hosts, host:port, IPs or CIDRs' }),
    TROUPE_SKILL_HOSTS: str('github.com,raw.githubusercontent.com', { maxLength: 2000 }),
    TROUPE_RATE_LIMIT_PER_MINUTE: int(1200, 0, 1_000_000),
    TROUPE_RATE_LIMIT_PER_IP_PER_MINUTE: int(6000, 0, 10_000_000),
    TROUPE_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: int(60, 0, 1_000_000),
    TROUPE_RATE_LIMIT_SESSIONS_PER_MINUTE: int(120, 0, 1_000_000),
    TROUPE_RATE_LIMIT_PAIRING_PER_MINUTE: int(20, 0, 1_000_000),
    TROUPE_TRUST_PROXY: int(0, 0, 10),
    TROUPE_METRICS_TOKEN: optional({ minLength: 16, 'x-secret': true, 'x-expected': 'at least 16 characters (generate one: openssl rand -hex 32)' }),
    TROUPE_REALTIME_RECHECK_MS: int(5000, 100, 3_600_000),
    TROUPE_MAX_WAIT_SECONDS: int(120, 1, 3600),
    TROUPE_DEV_LOGIN: oneOf(['0', '1'], '0'),
    TROUPE_HOST_ID: optional({ maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$', 'x-expected': 'letters, digits, _ . - (no colons: it names BullMQ queues)' }),
    TROUPE_HOST_MAX_SANDBOXES: int(200, 1, 1_000_000),
    TROUPE_HOST_DEAD_SECONDS: int(30, 2, 3600),
    TROUPE_HOST_MAX_WAITING: int(100, 0, 1_000_000),
    TROUPE_HOST_WAIT_SECONDS: int(600, 1, 24 * 3600),
    TROUPE_HOST_DRAIN_SECONDS: int(300, 1, 24 * 3600),
  },
  additionalProperties: false,
} as const;

/**
 * The environment after validation, derived from the schema: numbers for integer and number
 * properties, the enum's values for enums, strings otherwise; undefined when unset without a default.
 */
type Props = typeof envSchema.properties;
type ValueOf<P> = P extends { type: 'integer' | 'number' } ? number : P extends { enum: readonly (infer E)[] } ? E : string;
type Env = { [K in keyof Props]: Props[K] extends { default: unknown } ? ValueOf<Props[K]> : ValueOf<Props[K]> | undefined };

export interface Config {
  readonly port: number;
  /** Listen address. Default 127.0.0.1: anything else needs real secrets (see `checkSecrets`). */
  readonly host: string;
  /** True when `host` is loopback only (127.0.0.0/8, ::1, localhost): the dev defaults are allowed. */
  readonly loopbackOnly: boolean;
  readonly publicUrl: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** Prefix of every Redis key and channel, so several deployments (or the tests) share a Redis. */
  readonly redisPrefix: string;
  readonly dockerHost?: string;
  /** HS256 secret of user JWTs (not enumerable, so it stays out of logs and spreads). */
  readonly jwtSecret: string;
  readonly jwtSecretIsDevDefault: boolean;
  /** 32-byte key for AES-256-GCM encryption of secrets at rest; each read returns a fresh copy. */
  readonly secretKey: Buffer;
  readonly secretKeyIsDevDefault: boolean;
  readonly logLevel: string;
  /** Names this runtime instance in container labels; the reaper only touches its own. */
  readonly instance: string;
  readonly workerConcurrency: number;
  readonly idleTimeoutSeconds: number;
  readonly defaultImage: string;
  readonly sandboxMemoryMb: number;
  readonly sandboxCpus: number;
  readonly sandboxPidsLimit: number;
  /**
   * Deployment-wide ceilings on what one sandbox may ask for. Unset, they are derived from the host
   * this process runs on (half its memory, its CPU count, 4096 pids): set them explicitly when the
   * api and the workers run on different machines.
   */
  readonly sandboxMaxMemoryMb: number;
  readonly sandboxMaxCpus: number;
  readonly sandboxMaxPids: number;
  /** Per-project quotas (0 = unlimited): sandboxes not stopped, and sessions queued or running. */
  readonly projectMaxSandboxes: number;
  readonly projectMaxRunningSessions: number;
  /** TROUPE_ALLOWED_IMAGES: images sandboxes may use (names, or prefixes ending in `*`); always includes defaultImage. */
  readonly allowedImages: readonly string[];
  /** TROUPE_ALLOW_BRIDGE_NETWORK: whether `network: "bridge"` may be granted at all (then only by project owners/admins). */
  readonly allowBridgeNetwork: boolean;
  readonly toolTimeoutSeconds: number;
  /** Warm pool: paused containers kept ready per sandbox shape per worker (0 = off), and their max age. */
  readonly poolSize: number;
  readonly poolMaxAgeSeconds: number;
  readonly bodyLimitBytes: number;
  /** BullMQ lock duration: how soon a dead worker's session is taken over by another. */
  readonly jobLockMs: number;
  readonly reaperIntervalMs: number;
  /** User ids (JWT `sub`) allowed on admin surfaces such as /debug/events. */
  readonly adminUsers: readonly string[];
  readonly shutdownTimeoutMs: number;
  /** Webhook delivery: attempts, first retry delay (doubling), request timeout. */
  readonly webhookAttempts: number;
  readonly webhookBackoffMs: number;
  readonly webhookTimeoutMs: number;
  /** How long GET /api/v1/updates can look back. */
  readonly updatesRetentionHours: number;
  readonly pairingCodeTtlSeconds: number;
  /** TROUPE_EXECUTOR: false runs every tool command as its own `docker exec`. */
  readonly executor: boolean;
  /** Bytes of live output (deltas) kept per session in Redis for mid-message replay; the oldest go first. */
  readonly liveBufferBytes: number;
  /** Caps how long the api waits for a worker to acknowledge a command before answering 503 (unset: each command's own limit). */
  readonly commandTimeoutMs?: number;
  /** TROUPE_OUTBOUND_ALLOW: destinations the outbound guard lets through although private (lib/outbound.ts). */
  readonly outboundAllow: readonly AllowRule[];
  /** TROUPE_SKILL_HOSTS: the hosts a skill's source_url may name (and redirect to). */
  readonly skillHosts: readonly string[];
  /**
   * Requests per minute (fixed windows, counted in Redis so they hold across api replicas; 0 = off):
   * per principal on every authenticated route, per client IP on every route but health, metrics
   * and OpenAPI, per IP for bad tokens, per principal for routes that create sessions, and per
   * principal and per IP for redeeming pairing codes (http/rate-limit.ts).
   */
  readonly rateLimits: Readonly<RateLimitSettings>;
  /** TROUPE_TRUST_PROXY: reverse proxies in front that append X-Forwarded-For (0: the socket's address is the client). */
  readonly trustProxy: number;
  /** TROUPE_METRICS_TOKEN: a bearer token that opens /metrics to non-loopback clients (not enumerable). */
  readonly metricsToken?: string;
  /** How often open SSE, Socket.IO and /ws connections re-check that their principal may still see what they watch. */
  readonly realtimeRecheckMs: number;
  /** The longest a blocking send-message (?wait=true) waits before answering 202 with where to look. */
  readonly maxWaitSeconds: number;
  /** TROUPE_DEV_LOGIN=1: POST /api/v1/dev/login mints user tokens for the dashboard's dev sign-in (loopback only). */
  readonly devLogin: boolean;
  /**
   * This worker host (issue 13): its id (TROUPE_HOST_ID, default derived from the machine's name
   * and the engine, so worker processes on one engine form one host), its engine (DOCKER_HOST),
   * how many sandboxes it takes, and when a silent host counts as dead.
   */
  readonly hostId: string;
  readonly hostEngine: string;
  readonly hostMaxSandboxes: number;
  readonly hostDeadSeconds: number;
  /** Sessions allowed to wait for room on a host before new ones are refused (503 + Retry-After). */
  readonly hostMaxWaiting: number;
  /** A session that waited this long for a host with room fails with the reason. */
  readonly hostWaitSeconds: number;
  /** The longest a drain waits for running turns to finish and sandboxes to move before the host exits anyway. */
  readonly hostDrainSeconds: number;
}

/** The default host id: the machine's name and the engine, in the characters a queue name may hold. */
export function derivedHostId(hostname: string, engine: string): string {
  return `${hostname}-${engine.replace(/^unix:\/\//, '')}`.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '').slice(0, 100) || 'host';
}

export interface RateLimitSettings {
  perMinute: number;
  perIpPerMinute: number;
  authFailuresPerMinute: number;
  sessionsPerMinute: number;
  pairingPerMinute: number;
}

// ajv-formats ships CJS; under ESM its default export sits one level down.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, coerceTypes: true, useDefaults: true, strict: true }));
ajv.addVocabulary(['x-expected', 'x-secret', 'x-url']);
const validateEnv = ajv.compile(envSchema);

// ---------------------------------------------------------------------------------------------
// Default secrets: the one decision, pure so it can be tested on its own.
// ---------------------------------------------------------------------------------------------

/** Whether listening on `host` reaches this machine only: 127.0.0.0/8, ::1 (or v4-mapped 127/8), localhost. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) h = mapped[1];
  if (net.isIPv4(h)) return h.split('.')[0] === '127';
  if (net.isIPv6(h)) {
    const list = new net.BlockList();
    list.addAddress('::1', 'ipv6');
    return list.check(h, 'ipv6');
  }
  return false; // any other name may resolve to a reachable address
}

/** The dev key or an obviously weak one: treated exactly like an unset TROUPE_SECRET_KEY. */
export function isKnownSecretKey(key: Buffer): boolean {
  // A key of one repeated byte: all zeros is what a malformed key once silently became.
  return key.toString('hex') === DEV_SECRET_KEY_HEX || key.every((b) => b === key[0]);
}

const NOTE_JWT = 'using the DEV default TROUPE_JWT_SECRET: fine on loopback; set your own before listening on another address.';
const NOTE_KEY = 'using the DEV default TROUPE_SECRET_KEY for secrets at rest: fine on loopback; set your own ' +
  '(and move stored secrets to it with TROUPE_SECRET_KEY_OLD=dev npm run rotate-secret-key) before listening on another address.';

export interface SecretsVerdict {
  loopbackOnly: boolean;
  jwtSecretIsDevDefault: boolean;
  secretKeyIsDevDefault: boolean;
  /** Reasons to refuse to start (non-empty only when listening beyond loopback). */
  refuse: string[];
  /** Things to print at start (dev defaults on loopback). */
  notes: string[];
}

/**
 * Unset or publicly known secrets are fine for local use and refused anywhere else: a server
 * that anyone else can reach must not let them mint tokens (TROUPE_JWT_SECRET) or read stored
 * model keys and env values (TROUPE_SECRET_KEY).
 */
export function checkSecrets(input: { host: string; jwtSecret?: string; secretKey?: Buffer }): SecretsVerdict {
  const loopbackOnly = isLoopbackHost(input.host);
  const jwtSecretIsDevDefault = !input.jwtSecret || KNOWN_JWT_SECRETS.has(input.jwtSecret);
  const secretKeyIsDevDefault = !input.secretKey || isKnownSecretKey(input.secretKey);
  const refuse: string[] = [];
  const notes: string[] = [];
  const state = (set: unknown) => (set ? 'a publicly known default' : 'not set');
  if (loopbackOnly) {
    if (jwtSecretIsDevDefault) notes.push(NOTE_JWT);
    if (secretKeyIsDevDefault) notes.push(NOTE_KEY);
  } else {
    const where = `HOST=${input.host} listens beyond loopback`;
    if (jwtSecretIsDevDefault) {
      refuse.push(`TROUPE_JWT_SECRET is ${state(input.jwtSecret)} and ${where}: anyone who can reach the server could sign tokens for any user. ` +
        'Set TROUPE_JWT_SECRET to a long random value, e.g. `export TROUPE_JWT_SECRET=$(openssl rand -hex 32)`, or listen on loopback only (HOST=127.0.0.1).');
    }
    if (secretKeyIsDevDefault) {
      refuse.push(`TROUPE_SECRET_KEY is ${state(input.secretKey)} and ${where}: stored model keys and env values could be decrypted by anyone with this source. ` +
        'Set TROUPE_SECRET_KEY to 32 random bytes, e.g. `export TROUPE_SECRET_KEY=$(openssl rand -hex 32)` ' +
        '(data sealed under the dev key: TROUPE_SECRET_KEY_OLD=dev npm run rotate-secret-key, see SECURITY.md), or listen on loopback only (HOST=127.0.0.1).');
    }
  }
  return { loopbackOnly, jwtSecretIsDevDefault, secretKeyIsDevDefault, refuse, notes };
}

/** TROUPE_SECRET_KEY's value as bytes (64 hex characters, or base64/base64url); null if not 32 bytes. */
export function decodeSecretKey(raw: string): Buffer | null {
  const buf = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return buf.length === 32 ? buf : null;
}

// ---------------------------------------------------------------------------------------------

function expectation(p: Prop): string {
  if (typeof p['x-expected'] === 'string') return p['x-expected'];
  if (Array.isArray(p.enum)) return (p.enum as string[]).join('|');
  if (p.type === 'integer' || p.type === 'number') {
    const kind = p.type === 'integer' ? 'an integer' : 'a number';
    return p.maximum === Number.MAX_SAFE_INTEGER ? `${kind} of at least ${p.minimum}` : `${kind} between ${p.minimum} and ${p.maximum}`;
  }
  return `a string of ${p.minLength} to ${p.maxLength} characters`;
}

function problemOf(name: string, raw: string | undefined, e: ErrorObject): string {
  const p = (envSchema.properties as Record<string, Prop>)[name];
  if (!p) return `${name}: ${e.message ?? 'invalid'}`;
  let shown: string;
  if (p['x-secret']) shown = '';
  else if (p['x-url']) shown = `=${JSON.stringify((raw ?? '').replace(/:[^:@/]*@/, ':***@'))}`;
  else shown = `=${JSON.stringify(raw)}`;
  return `${name}${shown}: expected ${expectation(p)}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Reads and checks the environment; every problem is reported in one ConfigError. Pure: reads
 * only `env` (and the host name, as the default instance label). The result is deeply frozen.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Only the variables the schema knows; empty means unset.
  const given: Record<string, string> = {};
  for (const name of Object.keys(envSchema.properties)) {
    const v = env[name];
    if (v !== undefined && v !== '') given[name] = v;
  }
  const values: Record<string, unknown> = { ...given };
  const problems: string[] = [];
  if (!validateEnv(values)) {
    const seen = new Set<string>();
    for (const e of validateEnv.errors ?? []) {
      const name = e.instancePath.split('/')[1] ?? '';
      if (seen.has(name)) continue;
      seen.add(name);
      problems.push(problemOf(name, given[name], e));
    }
  }
  const v = values as unknown as Env;

  let secretKey: Buffer | undefined;
  if (v.TROUPE_SECRET_KEY && !problems.some((p) => p.startsWith('TROUPE_SECRET_KEY'))) {
    secretKey = decodeSecretKey(v.TROUPE_SECRET_KEY) ?? undefined;
    if (!secretKey) problems.push(`TROUPE_SECRET_KEY: expected ${expectation(envSchema.properties.TROUPE_SECRET_KEY)}`);
  }
  const outboundAllow = parseOutboundAllow(v.TROUPE_OUTBOUND_ALLOW, problems);
  const allowedImages = parseAllowedImages(v.TROUPE_ALLOWED_IMAGES, v.TROUPE_DEFAULT_IMAGE, problems);
  // Ceilings default to what this host has; never below the per-sandbox defaults.
  const ceilings = {
    sandboxMaxMemoryMb: v.TROUPE_SANDBOX_MAX_MEMORY_MB ?? Math.max(Math.floor(os.totalmem() / 2 / 1024 / 1024), v.TROUPE_SANDBOX_MEMORY_MB),
    sandboxMaxCpus: v.TROUPE_SANDBOX_MAX_CPUS ?? Math.max(os.cpus().length, v.TROUPE_SANDBOX_CPUS),
    sandboxMaxPids: v.TROUPE_SANDBOX_MAX_PIDS ?? Math.max(4096, v.TROUPE_SANDBOX_PIDS_LIMIT),
  };
  if (v.TROUPE_SANDBOX_MEMORY_MB > ceilings.sandboxMaxMemoryMb) problems.push(`TROUPE_SANDBOX_MEMORY_MB=${v.TROUPE_SANDBOX_MEMORY_MB} is above TROUPE_SANDBOX_MAX_MEMORY_MB=${ceilings.sandboxMaxMemoryMb}`);
  if (v.TROUPE_SANDBOX_CPUS > ceilings.sandboxMaxCpus) problems.push(`TROUPE_SANDBOX_CPUS=${v.TROUPE_SANDBOX_CPUS} is above TROUPE_SANDBOX_MAX_CPUS=${ceilings.sandboxMaxCpus}`);
  if (v.TROUPE_SANDBOX_PIDS_LIMIT > ceilings.sandboxMaxPids) problems.push(`TROUPE_SANDBOX_PIDS_LIMIT=${v.TROUPE_SANDBOX_PIDS_LIMIT} is above TROUPE_SANDBOX_MAX_PIDS=${ceilings.sandboxMaxPids}`);
  const host = typeof v.HOST === 'string' ? v.HOST : '127.0.0.1';
  const secrets = checkSecrets({ host, jwtSecret: v.TROUPE_JWT_SECRET, secretKey });
  if (v.TROUPE_DEV_LOGIN === '1' && !secrets.loopbackOnly) {
    problems.push(`TROUPE_DEV_LOGIN=1 and HOST=${host} listens beyond loopback: dev sign-in lets anyone who reaches the server become any user. ` +
      'Unset TROUPE_DEV_LOGIN, or listen on loopback only (HOST=127.0.0.1).');
  }
  // A value already reported as malformed is not reported again as "not set".
  const refused = secrets.refuse.filter((r) => !problems.some((p) => p.startsWith(r.split(' ')[0])));
  problems.push(...refused);

  if (problems.length) {
    const more = refused.length ? ' Production settings: SECURITY.md.' : '';
    throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}\nSee the configuration table in README.md.${more}`);
  }

  const jwtSecret = v.TROUPE_JWT_SECRET ?? DEV_JWT_SECRET;
  const key = Buffer.from(secretKey ?? Buffer.from(DEV_SECRET_KEY_HEX, 'hex'));
  const cfg: Omit<Config, 'jwtSecret' | 'secretKey' | 'metricsToken'> = {
    port: v.PORT,
    host,
    loopbackOnly: secrets.loopbackOnly,
    publicUrl: v.TROUPE_PUBLIC_URL ?? `http://localhost:${v.PORT}`,
    databaseUrl: v.DATABASE_URL,
    redisUrl: v.REDIS_URL,
    redisPrefix: v.TROUPE_REDIS_PREFIX,
    dockerHost: v.DOCKER_HOST,
    jwtSecretIsDevDefault: secrets.jwtSecretIsDevDefault,
    secretKeyIsDevDefault: secrets.secretKeyIsDevDefault,
    logLevel: v.TROUPE_LOG_LEVEL,
    instance: v.TROUPE_INSTANCE ?? os.hostname(),
    workerConcurrency: v.TROUPE_WORKER_CONCURRENCY,
    idleTimeoutSeconds: v.TROUPE_IDLE_TIMEOUT_SECONDS,
    defaultImage: v.TROUPE_DEFAULT_IMAGE,
    sandboxMemoryMb: v.TROUPE_SANDBOX_MEMORY_MB,
    sandboxCpus: v.TROUPE_SANDBOX_CPUS,
    sandboxPidsLimit: v.TROUPE_SANDBOX_PIDS_LIMIT,
    ...ceilings,
    projectMaxSandboxes: v.TROUPE_PROJECT_MAX_SANDBOXES,
    projectMaxRunningSessions: v.TROUPE_PROJECT_MAX_RUNNING_SESSIONS,
    allowedImages,
    allowBridgeNetwork: v.TROUPE_ALLOW_BRIDGE_NETWORK === 'true',
    toolTimeoutSeconds: v.TROUPE_TOOL_TIMEOUT_SECONDS,
    poolSize: v.TROUPE_POOL_SIZE,
    poolMaxAgeSeconds: v.TROUPE_POOL_MAX_AGE_SECONDS,
    bodyLimitBytes: v.TROUPE_BODY_LIMIT_BYTES,
    jobLockMs: v.TROUPE_JOB_LOCK_MS,
    reaperIntervalMs: v.TROUPE_REAPER_INTERVAL_MS,
    adminUsers: v.TROUPE_ADMIN_USERS.split(',').map((s) => s.trim()).filter(Boolean),
    shutdownTimeoutMs: v.TROUPE_SHUTDOWN_TIMEOUT_MS,
    webhookAttempts: v.TROUPE_WEBHOOK_ATTEMPTS,
    webhookBackoffMs: v.TROUPE_WEBHOOK_BACKOFF_MS,
    webhookTimeoutMs: v.TROUPE_WEBHOOK_TIMEOUT_MS,
    updatesRetentionHours: v.TROUPE_UPDATES_RETENTION_HOURS,
    pairingCodeTtlSeconds: v.TROUPE_PAIRING_CODE_TTL_SECONDS,
    executor: v.TROUPE_EXECUTOR !== 'off',
    liveBufferBytes: v.TROUPE_LIVE_BUFFER_BYTES,
    commandTimeoutMs: v.TROUPE_COMMAND_TIMEOUT_MS,
    outboundAllow,
    skillHosts: v.TROUPE_SKILL_HOSTS.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean),
    rateLimits: {
      perMinute: v.TROUPE_RATE_LIMIT_PER_MINUTE,
      perIpPerMinute: v.TROUPE_RATE_LIMIT_PER_IP_PER_MINUTE,
      authFailuresPerMinute: v.TROUPE_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE,
      sessionsPerMinute: v.TROUPE_RATE_LIMIT_SESSIONS_PER_MINUTE,
      pairingPerMinute: v.TROUPE_RATE_LIMIT_PAIRING_PER_MINUTE,
    },
    trustProxy: v.TROUPE_TRUST_PROXY,
    realtimeRecheckMs: v.TROUPE_REALTIME_RECHECK_MS,
    maxWaitSeconds: v.TROUPE_MAX_WAIT_SECONDS,
    devLogin: v.TROUPE_DEV_LOGIN === '1',
    hostEngine: v.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
    hostId: v.TROUPE_HOST_ID ?? derivedHostId(os.hostname(), v.DOCKER_HOST ?? 'unix:///var/run/docker.sock'),
    hostMaxSandboxes: v.TROUPE_HOST_MAX_SANDBOXES,
    hostDeadSeconds: v.TROUPE_HOST_DEAD_SECONDS,
    hostMaxWaiting: v.TROUPE_HOST_MAX_WAITING,
    hostWaitSeconds: v.TROUPE_HOST_WAIT_SECONDS,
    hostDrainSeconds: v.TROUPE_HOST_DRAIN_SECONDS,
  };
  const metricsToken = v.TROUPE_METRICS_TOKEN;
  // Secrets are getters, not enumerable: JSON.stringify(config) or a log of it shows neither,
  // and the key's bytes cannot be overwritten through a returned Buffer.
  Object.defineProperties(cfg, {
    jwtSecret: { get: () => jwtSecret, enumerable: false },
    secretKey: { get: () => Buffer.from(key), enumerable: false },
    metricsToken: { get: () => metricsToken, enumerable: false },
  });
  return deepFreeze(cfg) as unknown as Config;
}

/** What `npm start` and the worker print at start about the secrets in use. */
export function startupNotes(c: Config): string[] {
  if (!c.loopbackOnly) return []; // beyond loopback, loadConfig has already refused the defaults
  return [
    c.jwtSecretIsDevDefault && NOTE_JWT,
    c.secretKeyIsDevDefault && NOTE_KEY,
    c.devLogin && 'dev sign-in is on (TROUPE_DEV_LOGIN=1): the dashboard can mint a user token for any name, from this machine only.',
  ].filter((n): n is string => !!n);
}

/** The process-wide configuration, read once from process.env at start-up. */
export const config: Config = loadConfig();
