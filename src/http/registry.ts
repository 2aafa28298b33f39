/**
 * Routes are declared as data: method, path, schemas, handler. The same declarations mount the
 * Koa router, drive validation and generate /openapi.json, so the three cannot drift apart.
 */
import type Koa from 'koa';
import type { ValidateFunction } from 'ajv';
import { assertValid, compileBody, compileQuery, type JsonSchema } from './schema.js';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import { HttpError } from './errors.js';
import type { Principal } from './auth.js';
import type { LimitClass } from './rate-limit.js';

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
  /**
   * Rate limit class besides the general per-principal one (http/rate-limit.ts): 'session' for
   * routes that create sessions, conversations, chats, pairs, tasks or sandboxes; 'pairing' for
   * redeeming pairing codes.
   */
  limit?: LimitClass;
  /** Streaming routes write ctx.body themselves and return undefined. */
  stream?: boolean;
  handler: (ctx: Koa.Context, input: RouteInput<B, Q>) => Promise<unknown>;
}

export interface CompiledRoute extends RouteDef {
  validateBody?: ValidateFunction;
  validateQuery?: ValidateFunction;
}

export const routes: CompiledRoute[] = [];

/**
 * The handler's input type, derived from the schema ajv enforces (json-schema-to-ts): a literal
 * schema gives its exact shape; a schema built as a plain record gives `any`; none gives `{}`.
 */
export type InputOf<S> = [S] extends [undefined] ? Record<string, never>
  : JSONSchema extends S ? any // a schema whose shape TypeScript cannot see
  : S extends JSONSchema ? FromSchema<S> : any;

export function defineRoute<const BS extends JSONSchema | undefined = undefined, const QS extends JSONSchema | undefined = undefined>(
  def: Omit<RouteDef<InputOf<BS>, InputOf<QS>>, 'body' | 'query'> & { body?: BS; query?: QS },
): void {
  routes.push({
    ...(def as unknown as RouteDef),
    validateBody: def.body ? compileBody(def.body as JsonSchema) : undefined,
    validateQuery: def.query ? compileQuery(def.query as JsonSchema) : undefined,
  });
}

/**
 * Postgres cannot store NUL characters or unpaired UTF-16 surrogates (text and jsonb both refuse
 * them), so they are refused here, with a 400, before anything reaches the database.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function assertStorable(value: unknown, where: string, depth = 0): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000') || LONE_SURROGATE.test(value)) {
      throw new HttpError(400, `Invalid request ${where}: strings may not contain NUL characters or unpaired surrogates`);
    }
  } else if (value && typeof value === 'object') {
    if (depth > 64) throw new HttpError(400, `Invalid request ${where}: nested too deeply`);
    for (const [k, v] of Object.entries(value)) {
      assertStorable(k, where, depth + 1);
      assertStorable(v, where, depth + 1);
    }
  }
}

export function validateInput(route: CompiledRoute, ctx: Koa.Context): { body: unknown; query: unknown } {
  assertStorable(ctx.params, 'path');
  assertStorable(ctx.query, 'query');
  assertStorable((ctx.request as { body?: unknown }).body, 'body');
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
