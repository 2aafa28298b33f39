/**
 * Every error the API answers is `{"error": "...", "details"?: [...]}` with a status: a
 * TroupeError carries the four (and Retry-After for 429/503). A request that never got an answer
 * (refused, reset, timed out, after the retries) is a TroupeConnectionError.
 */
export class TroupeError extends Error {
  override readonly name: string = 'TroupeError';
  constructor(
    /** The HTTP status (0 when no answer came). */
    readonly status: number,
    message: string,
    /** Per-field details of a 400 (`[{path, message}]`), when the API gave them. */
    readonly details?: unknown[],
    /** Seconds to wait before trying again (429, 503), from Retry-After. */
    readonly retryAfter?: number,
    /** What was asked: `GET /api/v1/...`. */
    readonly request?: string,
  ) {
    super(message);
  }

  /** Reads the `{error, details}` envelope of a failed response (or its text, when it is not JSON). */
  static async fromResponse(res: Response, request?: string): Promise<TroupeError> {
    const text = await res.text().catch(() => '');
    return TroupeError.fromBody(res.status, text, res.headers.get('retry-after'), request);
  }

  static fromBody(status: number, body: unknown, retryAfterHeader: string | null, request?: string): TroupeError {
    let parsed: unknown = body;
    if (typeof body === 'string') {
      try {
        parsed = body ? JSON.parse(body) : undefined;
      } catch {
        parsed = body;
      }
    }
    const envelope = parsed && typeof parsed === 'object' ? (parsed as { error?: unknown; details?: unknown }) : undefined;
    const message = typeof envelope?.error === 'string' ? envelope.error
      : typeof parsed === 'string' && parsed ? parsed.slice(0, 500) : `HTTP ${status}`;
    const details = Array.isArray(envelope?.details) ? envelope.details : undefined;
    const retryAfter = retryAfterHeader && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
    return new TroupeError(status, message, details, retryAfter, request);
  }
}

export class TroupeConnectionError extends TroupeError {
  override readonly name = 'TroupeConnectionError';
  constructor(message: string, request?: string, readonly cause?: unknown) {
    super(0, message, undefined, undefined, request);
  }
}

/** True for what fetch throws when no answer came (not for an abort the caller asked for). */
export function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return false;
  return err.name === 'TypeError' || /ECONNRESET|ECONNREFUSED|EPIPE|socket|terminated|fetch failed/i.test(`${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`);
}
