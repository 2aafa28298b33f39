/** Unauthenticated operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document. */
import { defineRoute } from '../registry.js';
import { pingDb } from '../../db/knex.js';
import { pingRedis } from '../../lib/redis.js';
import { registry } from '../../lib/metrics.js';
import { sandboxDriver } from '../../runtime/sandbox/index.js';
import { buildOpenApi } from '../openapi.js';

defineRoute({
  method: 'get', path: '/healthz', tag: 'Operations', summary: 'Liveness: the process answers', auth: 'none',
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    return { status: 'ok' };
  },
});

defineRoute({
  method: 'get', path: '/readyz', tag: 'Operations', summary: 'Readiness: Postgres, Redis and Docker are reachable', auth: 'none',
  handler: async (ctx) => {
    ctx.state.quietLog = true;
    const [postgres, redisOk, docker] = await Promise.all([pingDb(), pingRedis(), sandboxDriver().ping()]);
    const ok = postgres && redisOk && docker;
    ctx.state.statusOverride = ok ? 200 : 503;
    return { status: ok ? 'ready' : 'not ready', checks: { postgres, redis: redisOk, docker } };
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
