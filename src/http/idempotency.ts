/**
 * Idempotency-Key for POSTs that create sessions or send messages: the first request with a key
 * records its response; a retry with the same key (same caller, same route) gets that response
 * back and does nothing twice. A concurrent duplicate waits for the first to finish.
 */
import { db } from '../db/knex.js';
import type { Principal } from './auth.js';
import { HttpError } from './errors.js';

const PENDING = 0;

export async function withIdempotency(
  principal: Principal,
  route: string,
  key: string,
  run: () => Promise<{ status: number; body: unknown }>,
): Promise<{ status: number; body: unknown }> {
  if (key.length > 200) throw new HttpError(400, 'Idempotency-Key must be at most 200 characters');
  const who = principal.kind === 'user' ? `user:${principal.userId}` : `agent:${principal.agentId}`;
  const scope = `${who} ${route}`;
  const inserted = await db('idempotency_keys')
    .insert({ scope, key, status: PENDING, body: JSON.stringify(null) })
    .onConflict(['scope', 'key'])
    .ignore()
    .returning('key');
  if (inserted.length === 0) {
    // A pending record older than a minute belongs to an attempt that died (e.g. the database
    // went away before it could release the key): take it over.
    await db('idempotency_keys').where({ scope, key, status: PENDING }).andWhere('created_at', '<', db.raw("now() - interval '60 seconds'")).del();
    // Someone else holds this key: wait for their answer.
    for (let i = 0; i < 300; i++) {
      const row = await db('idempotency_keys').where({ scope, key }).first('status', 'body');
      if (!row) break; // the first attempt failed and released the key; fall through and run
      if (row.status !== PENDING) return { status: row.status, body: row.body };
      await new Promise((r) => setTimeout(r, 100));
    }
    const again = await db('idempotency_keys').where({ scope, key }).first('status', 'body');
    if (again && again.status !== PENDING) return { status: again.status, body: again.body };
    if (again) throw new HttpError(409, 'A request with this Idempotency-Key is still in progress');
    await db('idempotency_keys').insert({ scope, key, status: PENDING, body: JSON.stringify(null) }).onConflict(['scope', 'key']).ignore();
  }
  let result: { status: number; body: unknown };
  try {
    result = await run();
  } catch (err) {
    // Errors are not recorded: fixing the input and retrying with the same key should work.
    await db('idempotency_keys').where({ scope, key }).del().catch(() => {});
    throw err;
  }
  // The side effects happened: the answer must be recorded, or a retry would repeat them. Keep
  // trying through a database blip rather than give up and release the key.
  for (let attempt = 1; ; attempt++) {
    try {
      await db('idempotency_keys').where({ scope, key }).update({ status: result.status, body: JSON.stringify(result.body ?? {}) });
      return result;
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)));
    }
  }
}
