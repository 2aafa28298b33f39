/**
 * Long-lived connections (SSE, Socket.IO, /ws) are authorized when they open, and then again
 * every TROUPE_REALTIME_RECHECK_MS: the token is authenticated afresh (a revoked key, a deleted
 * agent or an expired JWT fails) and what the connection watches is checked again (membership of
 * the project, the session still visible). A failed check closes the connection; a check that
 * cannot be made (the database is briefly away) leaves it open until the next one.
 *
 * Results are cached per token and target for a little under one period, so a principal with many
 * streams open costs one check per period, not one per stream.
 */
import crypto from 'node:crypto';
import { config } from '../config.js';
import { log } from '../log.js';
import { authenticateToken, type Principal } from '../http/auth.js';
import { HttpError } from '../http/errors.js';

/** The token's principal now, or null if it no longer authenticates. Other failures throw. */
export async function reauthenticate(token: string | null): Promise<Principal | null> {
  try {
    return await authenticateToken(token);
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) return null;
    throw err;
  }
}

const cache = new Map<string, { until: number; result: Promise<boolean> }>();

/** `check()` for this token and target, shared by every connection asking within one period. */
export function cachedCheck(token: string | null, target: string, check: () => Promise<boolean>, periodMs = config.realtimeRecheckMs): Promise<boolean> {
  const key = `${crypto.createHash('sha256').update(token ?? '').digest('base64url')}|${target}`;
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && hit.until > now) return hit.result;
  if (cache.size > 10_000) for (const [k, v] of cache) if (v.until <= now) cache.delete(k);
  const result = check();
  // Just under a period: the next connection's tick after this one runs a fresh check.
  cache.set(key, { until: now + Math.max(50, periodMs - 250), result });
  // A check that could not be made is not remembered.
  result.catch(() => cache.delete(key));
  return result;
}

/**
 * Runs `check` every period (the first one at a random point of the first period, so connections
 * opened together do not all check in the same instant) and calls `lost` once when it answers
 * false. Returns a function that stops the watch (call it when the connection closes).
 */
export function watchAccess(check: () => Promise<boolean>, lost: () => void, periodMs = config.realtimeRecheckMs): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout;
  const tick = async () => {
    if (stopped) return;
    let ok = true;
    try {
      ok = await check();
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'realtime access recheck could not be made; kept open until the next one');
    }
    if (stopped) return;
    if (!ok) {
      stopped = true;
      lost();
      return;
    }
    timer = setTimeout(() => void tick(), periodMs);
    timer.unref();
  };
  timer = setTimeout(() => void tick(), Math.round(periodMs * (0.5 + Math.random() / 2)));
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
