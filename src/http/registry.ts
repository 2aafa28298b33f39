/**
 * Routes are declared as data: method, path, schemas, handler. The same declarations mount the
 * Koa router, drive validation and generate /openapi.json, so the three cannot drift apart.
 */
import type Koa from 'koa';
import type { ValidateFunction } from 'ajv';
import { assertValid, compileBody, compileQuery, type JsonSchema } from './schema.js';
import type { Principal } from './auth.js';

export interface RouteInput<B = any, Q = any> {
  params: Record<string, string>;
  query: Q;
  body: B;
  principal: Principal;
}

export interface RouteDef<B = any, Q = any> {
  method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  path: string;
  summary: string;
  tag: string;
  /** 'none' for health/metrics/openapi; default requires a bearer token. */
  auth?: 'required' | 'none';
  body?: JsonSchema;
  query?: JsonSchema;
  /** Success status (201 for creations). */
  status?: number;
  /** Response schema for the OpenAPI document (informational). */
  response?: JsonSchema;
  /** True for routes that honour the Idempotency-Key header. */
  idempotent?: boolean;
  /** Also accept the token as ?access_token= (EventSource in browsers cannot set headers). */
  tokenFromQuery?: boolean;
  /** Streaming routes write ctx.body themselves and return undefined. */
  stream?: boolean;
  handler: (ctx: Koa.Context, input: RouteInput<B, Q>) => Promise<unknown>;
}

export interface CompiledRoute extends RouteDef {
  validateBody?: ValidateFunction;
  validateQuery?: ValidateFunction;
}

export const routes: CompiledRoute[] = [];

export function defineRoute<B = any, Q = any>(def: RouteDef<B, Q>): void {
  routes.push({
    ...(def as RouteDef),
    validateBody: def.body ? compileBody(def.body) : undefined,
    validateQuery: def.query ? compileQuery(def.query) : undefined,
  });
}

export function validateInput(route: CompiledRoute, ctx: Koa.Context): { body: unknown; query: unknown } {
  const query = { ...(ctx.query as Record<string, unknown>) };
  if (route.validateQuery) assertValid(route.validateQuery, query, 'query');
  let body: unknown = (ctx.request as { body?: unknown }).body;
  if (route.validateBody) {
    if (body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0 && !ctx.request.length)) {
      body = {};
    }
    assertValid(route.validateBody, body, 'body');
  }
  return { body, query };
}
