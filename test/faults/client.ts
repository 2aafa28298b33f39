/**
 * The suite's own view of the system: an HTTP client for the api under test, user tokens, and a
 * Postgres pool of its own (to read the durable log the verdicts are based on) whose queries are
 * retried across a Postgres restart.
 */
import crypto from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { SignJWT } from 'jose';
import { config } from '../../src/config.js';
import { FAULTS_DB_URL } from './env.js';
import { sleep } from './cluster.js';

const quiet = { warn() {}, error() {}, deprecate() {}, debug() {} };
// Quiet: while Postgres restarts, q() retries and knex would print every failed connect.
export const db: Knex = knexFactory({ client: 'pg', connection: FAULTS_DB_URL, pool: { min: 0, max: 6 }, log: quiet });

/** Runs a query, retrying for a while if Postgres is (re)starting. */
export async function q<T>(fn: (k: Knex) => Promise<T>, tries = 60): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn(db);
    } catch (err) {
      if (i >= tries) throw err;
      await sleep(500);
    }
  }
}

export async function userToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1d')
    .sign(new TextEncoder().encode(config.jwtSecret));
}

export const uniq = (p: string) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

export interface Res<T = any> {
  status: number;
  body: T;
  text: string;
}

export async function call<T = any>(base: string, method: string, path: string, opts: {
  token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number;
} = {}): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization ??= `Bearer ${opts.token}`;
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body: body as BodyInit | undefined, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, text };
}

/**
 * A POST that must eventually happen exactly once, whatever the api, Redis or Postgres are going
 * through: retried with one Idempotency-Key until a 2xx (or a 4xx other than 409) or the deadline.
 */
export async function postOnce<T = any>(base: string, path: string, token: string, body: unknown, deadlineMs = 45_000): Promise<{ res?: Res<T>; attempts: number; errors: string[] }> {
  const key = crypto.randomUUID();
  const errors: string[] = [];
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      // Longer than the api's own wait for a concurrent duplicate (30 s), so its 409 is seen.
      const res = await call<T>(base, 'POST', path, { token, body, headers: { 'idempotency-key': key }, timeoutMs: 35_000 });
      if (res.status < 300 || (res.status >= 400 && res.status < 500 && res.status !== 409)) return { res, attempts: attempt, errors };
      errors.push(`${res.status} ${res.text.slice(0, 200)}`);
    } catch (err) {
      errors.push(String((err as Error).cause ?? (err as Error).message).slice(0, 200));
    }
    if (Date.now() > deadline) return { attempts: attempt, errors };
    await sleep(Math.min(2000, 200 * attempt));
  }
}

export async function newProject(base: string, token: string, name = uniq('faults')): Promise<string> {
  const r = await call(base, 'POST', '/api/v1/projects', { token, body: { name } });
  if (r.status !== 201) throw new Error(`project create failed: ${r.status} ${r.text}`);
  return r.body.id;
}

export async function newAgent(base: string, token: string, projectId: string, body: Record<string, unknown>): Promise<any> {
  const r = await call(base, 'POST', `/api/v1/projects/${projectId}/agents`, {
    token, body: { name: uniq('agent'), llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' }, ...body },
  });
  if (r.status !== 201) throw new Error(`agent create failed: ${r.status} ${r.text}`);
  return r.body;
}
