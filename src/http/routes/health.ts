/** Unauthenticated operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document. */
import { defineRoute } from '../registry.js';
import { pingDb } from '../../db/knex.js';
import { pingRedis } from '../../lib/redis.js';
import { liveWorkers } from '../../lib/heartbeat.js';
import { registry } from '../../lib/metrics.js';
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
  method: 'get', path: '/metrics', tag: 'Operations', summary: 'Prometheus metrics', auth: 'none', stream: true,
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
    return undefined;
  },
});

defineRoute({
  method: 'get', path: '/openapi.json', tag: 'Operations', summary: 'This API as an OpenAPI 3.1 document', auth: 'none',
  handler: async () => buildOpenApi(),
});
