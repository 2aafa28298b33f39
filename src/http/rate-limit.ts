/**
 * Rate limits (issue 12). Counted in Redis with rate-limiter-flexible (fixed one-minute windows,
 * one atomic script per count), so every api replica shares the same counters: a client cannot
 * get N times the limit by spreading its requests over N replicas.
 *
 * - per client IP, every request but the operational routes (health, metrics, OpenAPI): a flood
 *   guard that also covers unknown paths and requests without a token;
 * - per principal (a user, or an agent whatever key it uses), every authenticated route;
 * - per IP, presented tokens that fail authentication; once over, that address is refused (429)
 *   before its tokens are even looked at, until the window ends (REST, Socket.IO and /ws alike);
 * - per principal, routes that create sessions, conversations, chats, pairs, tasks or sandboxes
 *   (route `limit: 'session'`);
 * - per principal and per IP, redeeming a pairing code (route `limit: 'pairing'`).
 *
 * 0 turns a limit off. When Redis is not reachable the limits let requests through (and say so
 * in the log): a Redis restart must not turn into an outage of the whole API.
 */
import type http from 'node:http';
import type Koa from 'koa';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { config, type RateLimitSettings } from '../config.js';
import { log } from '../log.js';
import { redis } from '../lib/redis.js';
import { DomainError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { authenticateToken } from './auth.js';
import { HttpError } from './errors.js';

/** What a route counts against besides the general per-principal limit. */
export type LimitClass = 'default' | 'session' | 'pairing';

export interface RateLimits {
  /** Koa middleware: the per-IP limit, for every path not in `exempt`. */
  perIp(exempt: ReadonlySet<string>): Koa.Middleware;
  /** After authentication: the per-principal limit, plus the route's class. */
  forPrincipal(principal: Principal, cls: LimitClass, ip: string): Promise<void>;
  /** authenticateToken, with bad tokens counted (and refused once over the limit) per IP. */
  authenticate(token: string | null, ip: string): Promise<Principal>;
}

const WINDOW_SECONDS = 60;

/** The client's address: the socket's, or with TROUPE_TRUST_PROXY=n the n-th X-Forwarded-For entry from the right. */
export function clientIp(req: http.IncomingMessage, trustProxy = config.trustProxy): string {
  let ip = req.socket.remoteAddress ?? 'unknown';
  if (trustProxy > 0) {
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    // Each trusted proxy appends the address it got the request from; anything further left was
    // written by the client and could be anything.
    if (hops.length) ip = hops[Math.max(0, hops.length - trustProxy)];
  }
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function principalKey(p: Principal): string {
  return p.kind === 'user' ? `u:${p.userId}` : `a:${p.agentId}`;
}

let lastWarn = 0;
function failOpen(err: unknown, name: string): void {
  // At most one line every 10 s: during a Redis outage every request would log otherwise.
  if (Date.now() - lastWarn < 10_000) return;
  lastWarn = Date.now();
  log.warn({ err: (err as Error)?.message ?? String(err), limit: name }, 'rate limit not checked (Redis unavailable): request let through');
}

function tooMany(res: RateLimiterRes, l: Limiter): DomainError {
  const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  const per = l.window === 60 ? 'minute' : `${l.window} s`;
  return new DomainError('rate_limited', `Too many requests: at most ${l.points} ${l.what} per ${per}; retry in ${retryAfter} s`, undefined, retryAfter);
}

interface Limiter {
  name: string;
  points: number;
  window: number;
  what: string;
  rl: RateLimiterRedis;
}

export function createRateLimits(
  settings: RateLimitSettings = config.rateLimits,
  opts: { client?: Redis; prefix?: string; /** Tests shorten the window to see a limit recover. */ windowSeconds?: number } = {},
): RateLimits {
  const client = opts.client ?? redis();
  const prefix = opts.prefix ?? config.redisPrefix;
  const window = opts.windowSeconds ?? WINDOW_SECONDS;
  const make = (name: string, points: number, what: string): Limiter | null => points > 0
    ? {
      name, points, what, window,
      rl: new RateLimiterRedis({
        storeClient: client, keyPrefix: `${prefix}:rl:${name}`, points, duration: window,
        // A Redis that is down answers at once instead of queueing the request behind a reconnect.
        rejectIfRedisNotReady: true,
      }),
    }
    : null;
  const ipAll = make('ip', settings.perIpPerMinute, 'requests from one address');
  const principal = make('principal', settings.perMinute, 'requests by one user or agent');
  const authFail = make('authfail', settings.authFailuresPerMinute, 'failed authentications from one address');
  const sessions = make('sessions', settings.sessionsPerMinute, 'session, conversation, chat, pair, task or sandbox creations by one user or agent');
  const pairing = make('pairing', settings.pairingPerMinute, 'pairing-code redemptions by one agent');
  const pairingIp = make('pairing-ip', settings.pairingPerMinute, 'pairing-code redemptions from one address');

  const consume = async (l: Limiter | null, key: string): Promise<void> => {
    if (!l) return;
    try {
      await l.rl.consume(key, 1);
    } catch (res) {
      if (res instanceof RateLimiterRes) throw tooMany(res, l);
      failOpen(res, l.name);
    }
  };

  return {
    perIp(exempt) {
      return async (ctx, next) => {
        if (ipAll && !exempt.has(ctx.path)) await consume(ipAll, clientIp(ctx.req));
        await next();
      };
    },

    async forPrincipal(p, cls, ip) {
      const key = principalKey(p);
      await consume(principal, key);
      if (cls === 'session') await consume(sessions, key);
      if (cls === 'pairing') {
        await consume(pairing, key);
        await consume(pairingIp, ip);
      }
    },

    async authenticate(token, ip) {
      if (authFail && token) {
        // An address over the limit is refused before its token is checked: otherwise a correct
        // guess (200) would still stand out from the wrong ones (429).
        try {
          const seen = await authFail.rl.get(ip);
          if (seen && seen.consumedPoints >= authFail.points) throw tooMany(seen, authFail);
        } catch (err) {
          if (err instanceof DomainError) throw err;
          failOpen(err, authFail.name);
        }
      }
      try {
        return await authenticateToken(token);
      } catch (err) {
        // Only a token that was presented and refused counts: a missing one is not a guess.
        if (authFail && token && err instanceof HttpError && err.status === 401) await consume(authFail, ip);
        throw err;
      }
    },
  };
}

let shared: RateLimits | undefined;
/** The process's limits, from config (REST, Socket.IO and /ws share one set of counters). */
export function rateLimits(): RateLimits {
  shared ??= createRateLimits();
  return shared;
}
