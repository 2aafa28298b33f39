/**
 * The client's one way to the REST API: openapi-fetch over the generated paths (so a call's path,
 * parameters and body are checked against the API's own schemas), the bearer token, and two
 * behaviours every call gets:
 *  - operations that honour Idempotency-Key (generated/operations.ts) get a fresh key unless the
 *    caller gives one, so a retry of a create or a send does nothing twice;
 *  - reads and those operations are retried after a network error or a 503 (backing off, and
 *    honouring Retry-After), with the same key each time; anything else is tried once.
 * A non-2xx answer becomes a TroupeError from its `{error, details}` envelope.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './generated/openapi.js';
import { IDEMPOTENT_OPERATIONS } from './generated/operations.js';
import { isNetworkError, TroupeConnectionError, TroupeError } from './errors.js';

export interface ClientOptions {
  /** Where the API is, e.g. http://localhost:3000. */
  baseUrl: string;
  /** A user JWT or an agent API key; `null` on purpose for the routes that need none (dev sign-in, /openapi.json). */
  token: string | null;
  /** Tries after the first for retryable requests (default 3). */
  retries?: number;
  /** First backoff in ms, doubled each try (default 250). */
  retryDelayMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
  /** Sent as User-Agent (default `troupe-client/<version>`). */
  userAgent?: string;
}

const RETRY_MARK = 'x-troupe-client-retry';
export const VERSION = '0.1.0';

const sleep = (ms: number, signal?: AbortSignal | null) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => {
    clearTimeout(t);
    reject(signal.reason);
  }, { once: true });
});

export class Transport {
  readonly baseUrl: string;
  readonly token: string | null;
  readonly api: Client<paths>;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly fetchImpl: typeof fetch;
  readonly userAgent: string;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError('baseUrl is required (e.g. http://localhost:3000)');
    if (!opts.token && opts.token !== null) throw new TypeError('token is required (a user JWT or an agent API key)');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    // Called through a wrapper: a browser's fetch called as a method of another object throws.
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.userAgent = opts.userAgent ?? `troupe-client/${VERSION}`;
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), 'user-agent': this.userAgent },
      fetch: (req) => this.send(req),
    });
    this.api.use({
      onRequest: ({ request, schemaPath }) => {
        const retryable = request.method === 'GET' || request.method === 'HEAD' || IDEMPOTENT_OPERATIONS.has(`${request.method} ${schemaPath}`);
        if (IDEMPOTENT_OPERATIONS.has(`${request.method} ${schemaPath}`) && !request.headers.has('idempotency-key')) {
          request.headers.set('idempotency-key', globalThis.crypto.randomUUID());
        }
        if (retryable) request.headers.set(RETRY_MARK, '1');
        return request;
      },
    });
  }

  /** One request, with the retries its kind allows. */
  private async send(req: Request): Promise<Response> {
    const retryable = req.headers.has(RETRY_MARK);
    req.headers.delete(RETRY_MARK);
    const what = `${req.method} ${new URL(req.url).pathname}`;
    const body = req.body ? await req.arrayBuffer() : undefined;
    for (let attempt = 0; ; attempt++) {
      const last = !retryable || attempt >= this.retries;
      let res: Response;
      try {
        res = await this.fetchImpl(new Request(req.url, { method: req.method, headers: req.headers, body, signal: req.signal }));
      } catch (err) {
        if (last || !isNetworkError(err)) {
          if (isNetworkError(err)) throw new TroupeConnectionError(`Could not reach Troupe at ${this.baseUrl} (${what}): ${describe(err)}. Is the server running, and is the URL right?`, what, err);
          throw err;
        }
        await sleep(this.retryDelayMs * 2 ** attempt, req.signal);
        continue;
      }
      if (res.status === 503 && !last) {
        const after = Number(res.headers.get('retry-after'));
        await res.body?.cancel().catch(() => {});
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : this.retryDelayMs * 2 ** attempt, req.signal);
        continue;
      }
      return res;
    }
  }

  /** Unwraps an openapi-fetch answer: its data, or a TroupeError. */
  async unwrap<T>(call: Promise<{ data?: unknown; error?: unknown; response: Response }>): Promise<T> {
    const { data, error, response } = await call;
    if (!response.ok) {
      const what = `${response.url ? new URL(response.url).pathname : ''}`;
      throw TroupeError.fromBody(response.status, error ?? '', response.headers.get('retry-after'), what);
    }
    return data as T;
  }

  /** A raw authenticated fetch (streams), with the same base URL and headers. */
  async raw(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    headers.set('user-agent', this.userAgent);
    return this.fetchImpl(this.baseUrl + path, { ...init, headers });
  }
}

export function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
