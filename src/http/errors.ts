/**
 * The only error type the HTTP layer answers with. Services throw it; the error middleware turns it
 * into `{"error": message, "details"?: [...]}` with its status. Anything else is a 500 whose
 * message is logged, never sent.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (msg: string, details?: unknown[]) => new HttpError(400, msg, details);
export const unauthorized = (msg = 'Missing or invalid bearer token: send "Authorization: Bearer <jwt or api key>"') =>
  new HttpError(401, msg);
export const forbidden = (msg: string) => new HttpError(403, msg);
export const notFound = (what: string) => new HttpError(404, `${what} not found`);
export const conflict = (msg: string) => new HttpError(409, msg);
