/**
 * One ajv setup for the whole API. Bodies are checked strictly (no coercion, unknown fields
 * rejected by each schema's additionalProperties: false); query strings arrive as text, so their
 * validator coerces "10" to 10 and "true" to true. Both compile each schema once, at route
 * registration, and the same schema objects are published in /openapi.json.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { JSONSchema } from 'json-schema-to-ts';
import { badRequest } from './errors.js';

// ajv-formats ships CJS; under ESM its default export sits one level down.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

export type JsonSchema = Record<string, unknown>;
export type { JSONSchema } from 'json-schema-to-ts';

const bodyAjv = addFormats(new Ajv({ allErrors: true, strict: false }));
const queryAjv = addFormats(new Ajv({ allErrors: true, strict: false, coerceTypes: 'array', useDefaults: true }));

export function compileBody(schema: JsonSchema): ValidateFunction {
  return bodyAjv.compile(schema);
}
export function compileQuery(schema: JsonSchema): ValidateFunction {
  return queryAjv.compile(schema);
}

function describe(e: ErrorObject): { path: string; message: string } {
  const path = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') {
    return { path, message: `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` };
  }
  if (e.keyword === 'required') {
    return { path, message: `missing required field "${(e.params as { missingProperty: string }).missingProperty}"` };
  }
  return { path, message: e.message ?? 'invalid' };
}

export function assertValid<T>(validate: ValidateFunction, value: unknown, where: 'body' | 'query' | 'params'): T {
  if (validate(value)) return value as T;
  const details = (validate.errors ?? []).map(describe);
  const first = details[0];
  throw badRequest(`Invalid request ${where}: ${first ? `${first.path === '/' ? '' : first.path + ' '}${first.message}` : 'invalid'}`, details);
}

// Building blocks shared by route schemas.
export const uuid = { type: 'string', format: 'uuid' } as const;
export const idOrHandle = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const nonEmpty = (max = 10_000) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
/**
 * An object schema that refuses unknown fields. Generic over its literal shape, so the handler's
 * input type is derived from the very schema ajv enforces (registry.ts, json-schema-to-ts).
 */
export const obj = <const P extends Record<string, JSONSchema>, const R extends readonly (keyof P & string)[] = readonly []>(properties: P, required?: R) =>
  ({ type: 'object', properties, required: (required ?? []) as unknown as R, additionalProperties: false }) as const;
/** Naming a repository for a session's work (issue 14): the agent needs can_clone_repos. */
export const repositoryFields = {
  repository: { type: 'string', minLength: 1, maxLength: 200, description: 'a repository of the project (id or name), cloned into /workspace/<name> on branch agent/<slug>; needs can_clone_repos' },
  base_branch: { type: 'string', minLength: 1, maxLength: 200, description: "the branch to start from and the pull request's base (default: the repository's default branch)" },
} as const;
export const pagination = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
} as const;
