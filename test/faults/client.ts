/**
 * The suite's own view of the system: the kit's HTTP client and fixtures (test/support/http.ts)
 * for the api under test, user tokens, and a Postgres pool of its own (to read the durable log
 * the verdicts are based on) whose queries are retried across a Postgres restart.
 */
import crypto from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { config } from '../../src/config.js';
import { createAgent, createProject, request, uniq, userToken as signToken, type RequestOptions, type Res } from '../support/http.js';
import { sleep } from '../support/wait.js';
import { FAULTS_DB_URL } from './env.js';

export { uniq, type Res } from '../support/http.js';
/** The kit's request, with a 30 s deadline unless told otherwise: a fault may leave a request hanging. */
export const call = <T = any>(base: string, method: string, path: string, opts: RequestOptions = {}): Promise<Res<T>> =>
  request<T>(base, method, path, { timeoutMs: 30_000, ...opts });

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

export const userToken = (sub: string) => signToken(sub, config.jwtSecret);

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

export const newProject = (base: string, token: string, name = uniq('faults')) => createProject(base, token, name);
export const newAgent = (base: string, token: string, projectId: string, body: Record<string, unknown>) => createAgent(base, token, projectId, body);
