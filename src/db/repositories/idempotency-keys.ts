/**
 * Idempotency keys (idempotency_keys): the recorded answer to a request, per caller + route
 * (`scope`) and key. While the first attempt runs, the row is pending and leased by it (`owner`,
 * `lease_until`); the lease rules themselves live in http/idempotency.ts.
 */
import { db } from '../knex.js';

/** The status of a key whose answer is not recorded yet. */
export const PENDING = 0;

export interface IdempotencyKeyRow {
  scope: string;
  key: string;
  /** The HTTP status answered, or PENDING. */
  status: number;
  body: unknown;
  created_at: Date;
  /** The attempt holding a pending key. */
  owner: string | null;
  lease_until: Date | null;
}

export type Answer = Pick<IdempotencyKeyRow, 'status' | 'body'>;

const leaseUntil = (leaseSeconds: number) => db.raw(`now() + make_interval(secs => ?)`, [leaseSeconds]);

/** Inserts the key as pending, leased to `owner`; false when the key exists already. */
export async function claim(scope: string, key: string, owner: string, leaseSeconds: number): Promise<boolean> {
  return (await db('idempotency_keys')
    .insert({ scope, key, status: PENDING, body: JSON.stringify(null), owner, lease_until: leaseUntil(leaseSeconds) })
    .onConflict(['scope', 'key'])
    .ignore()
    .returning('key')).length > 0;
}

/** The key's status and body, pending or not; undefined when there is no such key. */
export async function answerOf(scope: string, key: string): Promise<Answer | undefined> {
  return db('idempotency_keys').where({ scope, key }).first('status', 'body');
}

/** Deletes the key if it is pending and nobody holds its lease any more; whether it did. */
export async function removeLapsed(scope: string, key: string): Promise<boolean> {
  return (await db('idempotency_keys').where({ scope, key, status: PENDING }).andWhere((w) => w.whereNull('lease_until').orWhere('lease_until', '<', db.fn.now())).del()) > 0;
}

/** Extends the owner's lease of a pending key. */
export async function renew(scope: string, key: string, owner: string, leaseSeconds: number): Promise<void> {
  await db('idempotency_keys').where({ scope, key, owner, status: PENDING }).update({ lease_until: leaseUntil(leaseSeconds) });
}

/** Deletes the owner's key (its attempt failed: nothing is recorded). */
export async function release(scope: string, key: string, owner: string): Promise<void> {
  await db('idempotency_keys').where({ scope, key, owner }).del();
}

/** Records the owner's answer. */
export async function record(scope: string, key: string, owner: string, status: number, body: unknown): Promise<void> {
  await db('idempotency_keys').where({ scope, key, owner }).update({ status, body: JSON.stringify(body) });
}
