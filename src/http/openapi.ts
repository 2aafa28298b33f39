/** Builds the OpenAPI 3.1 document from the route declarations and the very schemas ajv enforces. */
import { routes } from './registry.js';

let cached: Record<string, unknown> | undefined;

export function buildOpenApi(): Record<string, unknown> {
  if (cached) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
    const params = [...r.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = r.query
      ? Object.entries((r.query.properties ?? {}) as Record<string, unknown>).map(([name, schema]) => ({
          name, in: 'query', required: ((r.query!.required ?? []) as string[]).includes(name), schema,
        }))
      : [];
    const headers = r.idempotent
      ? [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 200 }, description: 'A retry with the same key returns the first response and does nothing twice' }]
      : [];
    const status = String(r.status ?? 200);
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}_${r.path.replace(/[^A-Za-z0-9]+/g, '_')}`,
      parameters: [...params, ...query, ...headers],
      responses: {
        [status]: {
          description: r.stream ? 'Stream' : 'Success',
          content: r.stream && r.path.endsWith('stream') ? { 'text/event-stream': {} } : { 'application/json': { schema: r.response ?? {} } },
        },
        '4XX': { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (r.auth === 'none') op.security = [];
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: r.body } } };
    (paths[path] ??= {})[r.method] = op;
  }
  cached = {
    openapi: '3.1.0',
    info: { title: 'Troupe', version: '0.1.0', description: 'Actor-model runtime for AI agents in containers. See README.md.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A user JWT (HS256, sub = user id) or an agent API key (trp_...)' } },
      schemas: {
        Error: {
          type: 'object', required: ['error'],
          properties: { error: { type: 'string' }, details: { type: 'array', items: { type: 'object' } } },
        },
      },
    },
    paths,
  };
  return cached;
}
