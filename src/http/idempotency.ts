/**
 * Idempotency-Key for POSTs that create sessions or send messages: the first request with a key
 * records its response; a retry with the same key (same caller, same route) gets that response
 * back and does nothing twice. A concurrent duplicate waits for the first to finish.
 *
 * A key in progress is a lease held by one attempt (`owner`), renewed while it runs. An attempt
 * that died — its process killed, or the database restarted under it before it could release the
 * key — stops renewing, and a retry takes the key over once the lease runs out (seconds). During
 * an outage itself the retry's own queries fail, which answers a retryable 503.
 */
import crypto from 'node:crypto';
import * as idempotencyKeys from '../db/repositories/idempotency-keys.js';
import type { Principal } from './auth.js';
import { HttpError } from './errors.js';

const LEASE_MS = 5_000;
const RENEW_MS = 1_500;
/** How long a retry waits for a live attempt's answer before giving up with 409. */
const WAIT_MS = 30_000;

export async function withIdempotency(
  principal: Principal,
  route: string,
  key: string,
  run: () => Promise<{ status: number; body: unknown }>,
): Promise<{ status: number; body: unknown }> {
  if (key.length > 200) throw new HttpError(400, 'Idempotency-Key must be at most 200 characters');
  const who = principal.kind === 'user' ? `user:${principal.userId}` : `agent:${principal.agentId}`;
  const scope = `${who} ${route}`;
  const owner = crypto.randomUUID();
  const claim = () => idempotencyKeys.claim(scope, key, owner, LEASE_MS / 1000);

  if (!(await claim())) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const row = await idempotencyKeys.answerOf(scope, key);
      if (row && row.status !== idempotencyKeys.PENDING) return { status: row.status, body: row.body };
      // Nobody holds it any more (released, or its holder's lease ran out): take it over.
      if (!row || (await idempotencyKeys.removeLapsed(scope, key))) {
        if (await claim()) break;
      }
      if (Date.now() > deadline) throw new HttpError(409, 'A request with this Idempotency-Key is still in progress; retry shortly');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const renew = setInterval(() => {
    void idempotencyKeys.renew(scope, key, owner, LEASE_MS / 1000).catch(() => {});
  }, RENEW_MS);
  let result: { status: number; body: unknown };
  try {
    result = await run();
  } catch (err) {
    clearInterval(renew);
    // Errors are not recorded: fixing the input and retrying with the same key should work.
    await idempotencyKeys.release(scope, key, owner).catch(() => {});
    throw err;
  }
  // The side effects happened: the answer must be recorded, or a retry would repeat them. Keep
  // trying through a database blip (renewing the lease meanwhile) rather than release the key.
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await idempotencyKeys.record(scope, key, owner, result.status, result.body ?? {});
        return result;
      } catch (err) {
        if (attempt >= 40) throw err;
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)));
      }
    }
  } finally {
    clearInterval(renew);
  }
}
