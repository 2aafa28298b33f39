/**
 * HTTP errors, and the one place that maps domain errors to statuses. Routes throw HttpError for
 * what only HTTP knows (415, 401 from a bad header); services throw DomainError
 * (src/domain/errors.ts). The error middleware answers both with `{"error", "details"?}`.
 * Anything else is a 500 whose message is logged, never sent.
 */
import { DomainError, type DomainErrorKind } from '../domain/errors.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown[],
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const STATUS: Record<DomainErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  unprocessable: 422,
  rate_limited: 429,
  upstream_failed: 502,
  unavailable: 503,
  timeout: 504,
};

export function httpStatusOf(kind: DomainErrorKind): number {
  return STATUS[kind];
}

/** HttpError for anything the error middleware can answer; null for internal errors. */
export function toHttpError(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  if (err instanceof DomainError) return new HttpError(STATUS[err.kind], err.message, err.details, err.retryAfter);
  return null;
}

export const unauthorized = (msg = 'Missing or invalid bearer token: send "Authorization: Bearer <jwt or api key>"') =>
  new HttpError(401, msg);
export { badRequest, conflict, forbidden, notFound } from '../domain/errors.js';
