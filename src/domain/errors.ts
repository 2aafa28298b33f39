/**
 * Domain errors: what went wrong in the rules, named by kind, with a message a user can act on.
 * Services throw these and know nothing of HTTP; src/http/errors.ts maps each kind to a status
 * in one place (`httpStatusOf`). Anything that is not a DomainError is an internal error.
 */
export type DomainErrorKind =
  | 'invalid' // bad input that passed the schema (unknown agent, wrong pair of agents, ...)
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict' // illegal state transition or duplicate
  | 'gone' // existed once, expired
  | 'unprocessable' // well-formed, but the world refused it (image missing, skill URL unreachable)
  | 'upstream_failed' // a model or a session failed while we waited on it
  | 'rate_limited'
  | 'unavailable' // no worker answered, a dependency is down: retry later
  | 'timeout'; // waited long enough: look elsewhere (stream, events)

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    readonly details?: unknown[],
    /** Seconds a client should wait before retrying (rate limits, unavailability). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const badRequest = (msg: string, details?: unknown[]) => new DomainError('invalid', msg, details);
export const forbidden = (msg: string) => new DomainError('forbidden', msg);
export const notFound = (what: string) => new DomainError('not_found', `${what} not found`);
export const conflict = (msg: string) => new DomainError('conflict', msg);
export const gone = (msg: string) => new DomainError('gone', msg);
export const unprocessable = (msg: string) => new DomainError('unprocessable', msg);
export const upstreamFailed = (msg: string) => new DomainError('upstream_failed', msg);
export const unavailable = (msg: string, retryAfter?: number) => new DomainError('unavailable', msg, undefined, retryAfter);
export const rateLimited = (msg: string, retryAfter: number) => new DomainError('rate_limited', msg, undefined, retryAfter);
export const timedOut = (msg: string) => new DomainError('timeout', msg);

export const isDomainError = (err: unknown, kind?: DomainErrorKind): err is DomainError =>
  err instanceof DomainError && (kind === undefined || err.kind === kind);
