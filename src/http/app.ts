/**
 * The Koa application: request ids and access logs, the one error-to-envelope mapping, body
 * parsing with a size limit, then every declared route (see registry.ts) mounted with auth,
 * validation and Idempotency-Key handling, and the web dashboard at / for every other page path.
 */
import crypto from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import { config } from '../config.js';
import { log } from '../log.js';
import { HttpError, toHttpError } from './errors.js';
import { bearerToken } from './auth.js';
import { clientIp, rateLimits as defaultRateLimits, type RateLimits } from './rate-limit.js';
import { routes, validateInput, type CompiledRoute } from './registry.js';
import type { Principal } from '../domain/principal.js';
import { withIdempotency } from './idempotency.js';
import { bullBoard } from './bull-board.js';
import { dashboard } from './dashboard.js';
import { httpRequests } from '../lib/metrics.js';
import { isTransient } from '../lib/transient.js';
import './routes/index.js';

export interface AppOptions {
  /** The rate limits to apply (default: the process's, from config); tests pass their own small ones. */
  rateLimits?: RateLimits;
}

export function createApp(opts: AppOptions = {}): Koa {
  // Forwarded headers are believed only with TROUPE_TRUST_PROXY (a client could write them).
  const app = new Koa({ proxy: config.trustProxy > 0, maxIpsCount: config.trustProxy });
  const limits = opts.rateLimits ?? defaultRateLimits();

  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    const requestId = ctx.get('x-request-id') || crypto.randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('x-request-id', requestId);
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const route = (ctx.state.routePath as string | undefined) ?? 'unmatched';
      httpRequests.observe({ method: ctx.method, route, status: String(ctx.status) }, ms / 1000);
      if (!ctx.state.quietLog) {
        log.info({ requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms) }, 'request');
      }
    }
  });

  // The one place that writes error responses.
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: `No route for ${ctx.method} ${ctx.path}; see GET /openapi.json` };
      } else if ((ctx.status === 405 || ctx.status === 501) && ctx.body == null) {
        // The router's answer for a known path with another method (501: a method it does not know
        // at all, which is the client's mistake too): the envelope, and Allow says what would do.
        ctx.status = 405;
        ctx.body = { error: `${ctx.method} is not allowed on ${ctx.path}; ${ctx.response.get('Allow') ? `allowed: ${ctx.response.get('Allow')}` : 'see GET /openapi.json'}` };
      }
    } catch (err) {
      const e = err as Error & { status?: number; statusCode?: number; expose?: boolean; type?: string };
      const known = toHttpError(err);
      if (known) {
        ctx.status = known.status;
        if (known.retryAfter !== undefined) ctx.set('Retry-After', String(known.retryAfter));
        ctx.body = known.details ? { error: known.message, details: known.details } : { error: known.message };
      } else if (e.type === 'entity.too.large' || e.status === 413) {
        ctx.status = 413;
        ctx.body = { error: `Request body too large: the limit is ${config.bodyLimitBytes} bytes` };
      } else if (/forbidden prototype property/.test(e.message)) {
        // The JSON parser (bourne) refuses __proto__ keys: prototype pollution attempts.
        ctx.status = 400;
        ctx.body = { error: 'JSON bodies may not contain "__proto__" or "constructor.prototype" keys' };
      } else if (e.type === 'entity.parse.failed' || err instanceof SyntaxError || (e.status === 400 && /json|parse/i.test(e.message))) {
        ctx.status = 400;
        ctx.body = { error: 'Malformed JSON in request body' };
      } else if (e.status && e.status >= 400 && e.status < 500 && e.expose) {
        ctx.status = e.status;
        ctx.body = { error: e.message };
      } else if (isTransient(err)) {
        log.warn({ err, requestId: ctx.state.requestId, path: ctx.path }, 'service unavailable');
        ctx.status = 503;
        ctx.set('Retry-After', '2');
        ctx.body = { error: 'A backing service (database, Redis or Docker) is briefly unavailable; retry shortly' };
      } else {
        log.error({ err, requestId: ctx.state.requestId, path: ctx.path }, 'unhandled error');
        ctx.status = 500;
        ctx.body = { error: `Internal error (request id ${ctx.state.requestId}); the server log has details` };
      }
    }
  });

  // Per client address, before anything else is done for the request (the operational routes
  // are exempt: load balancers and Prometheus poll them).
  app.use(limits.perIp(new Set(routes.filter((r) => r.auth === 'none').map((r) => r.path))));

  // Bull Board (admins only) before our body parser: it parses its own requests.
  app.use(bullBoard());

  app.use(
    bodyParser({
      enableTypes: ['json'],
      jsonLimit: config.bodyLimitBytes,
      // parse-failure errors are mapped to the envelope above
      onError: (err: Error) => {
        throw err;
      },
    }),
  );

  const router = new Router();
  for (const route of routes) mount(router, route, limits);
  app.use(router.routes());
  // The web dashboard at / (any path the API does not own).
  app.use(dashboard());
  app.use(router.allowedMethods({ throw: false }));
  return app;
}

function mount(router: Router, route: CompiledRoute, limits: RateLimits): void {
  router[route.method](route.path, async (ctx) => {
    ctx.state.routePath = route.path;
    const token = bearerToken(ctx.get('authorization')) ?? (route.tokenFromQuery && typeof ctx.query.access_token === 'string' ? ctx.query.access_token : null);
    let principal = undefined as never as Principal;
    if (route.auth !== 'none') {
      const ip = clientIp(ctx.req);
      principal = await limits.authenticate(token, ip);
      await limits.forPrincipal(principal, route.limit ?? 'default', ip);
    }
    if (route.body && ['post', 'patch', 'put'].includes(route.method) && ctx.request.length && !ctx.is('json')) {
      throw new HttpError(415, 'Expected Content-Type: application/json');
    }
    const { body, query } = validateInput(route, ctx);
    const run = () => route.handler(ctx, { params: ctx.params as Record<string, string>, query, body, principal });
    const idemKey = route.idempotent ? ctx.get('idempotency-key') : '';
    if (idemKey) {
      const { status, body: out } = await withIdempotency(principal, `${route.method} ${ctx.path}`, idemKey, async () => {
        const result = await run();
        return { status: (ctx.state.statusOverride as number | undefined) ?? route.status ?? 200, body: result ?? {} };
      });
      ctx.status = status;
      ctx.body = out;
      return;
    }
    const result = await run();
    if (route.stream) return;
    ctx.status = (ctx.state.statusOverride as number | undefined) ?? route.status ?? 200;
    ctx.body = result ?? {};
  });
}
