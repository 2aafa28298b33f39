/** Unauthenticated operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document. */
import { defineRoute } from '../registry.js';
import { pingDb } from '../../db/knex.js';
import { pingRedis } from '../../lib/redis.js';
import { liveWorkers } from '../../lib/heartbeat.js';
import { metricsAccess, registry } from '../../lib/metrics.js';
import { config } from '../../config.js';
import { HttpError } from '../errors.js';
import { buildOpenApi } from '../openapi.js';

defineRoute({
  method: 'get', path: '/healthz', tag: 'Operations', summary: 'Liveness: the process answers', auth: 'none',
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    return { status: 'ok' };
  },
});

defineRoute({
  method: 'get', path: '/readyz', tag: 'Operations', auth: 'none',
  summary: 'Readiness: Postgres and Redis are reachable; also how many workers (with a working Docker engine) are alive',
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    // The api never talks to Docker: the engines' health comes from the workers' heartbeats.
    const [postgres, redisOk, workers] = await Promise.all([pingDb(), pingRedis(), liveWorkers().catch(() => null)]);
    const ok = postgres && redisOk;
    ctx.state.statusOverride = ok ? 200 : 503;
    return {
      status: ok ? 'ready' : 'not ready',
      checks: { postgres, redis: redisOk, docker: workers ? workers.dockerOk > 0 : false },
      workers: workers ?? { alive: 0, dockerOk: 0 },
    };
  },
});

defineRoute({
  method: 'get', path: '/metrics', tag: 'Operations', auth: 'none', stream: true,
  summary: 'Prometheus metrics: loopback clients, or anyone with Authorization: Bearer <TROUPE_METRICS_TOKEN>',
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    const access = metricsAccess({
      remoteAddress: ctx.req.socket.remoteAddress,
      forwarded: Boolean(ctx.get('x-forwarded-for') || ctx.get('forwarded')),
      authorization: ctx.get('authorization') || undefined,
    }, config.metricsToken);
    if (access === 'unauthorized') throw new HttpError(401, 'Metrics need Authorization: Bearer <TROUPE_METRICS_TOKEN>');
    if (access === 'forbidden') throw new HttpError(403, 'Metrics are served to loopback clients only; set TROUPE_METRICS_TOKEN to read them from elsewhere');
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
    return undefined;
  },
});

defineRoute({
  method: 'get', path: '/openapi.json', tag: 'Operations', summary: 'This API as an OpenAPI 3.1 document', auth: 'none',
  handler: async () => buildOpenApi(),
});
