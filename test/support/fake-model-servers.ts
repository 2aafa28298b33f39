/**
 * Local stand-ins for the Anthropic and OpenAI APIs that speak their real streaming wire formats,
 * so tests drive the official SDK clients end to end (retries, SSE parsing, aborts) offline.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeResponse {
  text?: string;
  /** `rawInput` is streamed verbatim instead of JSON of `input`, e.g. to send invalid JSON. */
  toolCalls?: Array<{ id?: string; name: string; input?: Record<string, unknown>; rawInput?: string }>;
  /** Answer with this error status and the provider's JSON error body instead of a stream. */
  status?: number;
  /** Overrides the error body's message. */
  errorMessage?: string;
  /** Sets `retry-after-ms`, which both SDKs honour, so retry tests need not wait for backoff. */
  retryAfterMs?: number;
  /** Drop the connection halfway through the stream. */
  breakMidStream?: boolean;
  /** Pause between stream events. */
  delayMs?: number;
}

export interface FakeServerOptions {
  /** When set, requests must carry this key, else 401. */
  apiKey?: string;
  responses?: FakeResponse[];
}

export interface CapturedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface FakeServer {
  /** The base URL to give the provider (`baseUrl`). */
  url: string;
  requests: CapturedRequest[];
  /** Still-unserved responses; tests may push more. Once empty, each request gets an empty end_turn. */
  responses: FakeResponse[];
  close(): Promise<void>;
}

type Writer = (res: http.ServerResponse, spec: FakeResponse, body: any) => Promise<void>;

interface Dialect {
  basePath: string;
  authorized(headers: http.IncomingHttpHeaders, key: string): boolean;
  errorBody(status: number, message: string | undefined, headers: http.IncomingHttpHeaders): unknown;
  stream: Writer;
}

export function startFakeAnthropic(opts: FakeServerOptions = {}): Promise<FakeServer> {
  return startServer(opts, anthropic);
}

export function startFakeOpenAI(opts: FakeServerOptions = {}): Promise<FakeServer> {
  return startServer(opts, openai);
}

async function startServer(opts: FakeServerOptions, dialect: Dialect): Promise<FakeServer> {
  const requests: CapturedRequest[] = [];
  const responses = [...(opts.responses ?? [])];

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: any = raw;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      // keep the raw text for the test to look at
    }
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });

    const json = (status: number, payload: unknown, extra: http.OutgoingHttpHeaders = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(payload));
    };
    if (opts.apiKey !== undefined && !dialect.authorized(req.headers, opts.apiKey)) {
      return json(401, dialect.errorBody(401, undefined, req.headers));
    }
    if (req.method !== 'POST' || !req.url?.startsWith(dialect.basePath)) {
      return json(404, dialect.errorBody(404, `Not found: ${req.url}`, req.headers));
    }
    const spec = responses.shift() ?? {};
    if (spec.status && spec.status >= 400) {
      const extra = spec.retryAfterMs !== undefined ? { 'retry-after-ms': String(spec.retryAfterMs) } : {};
      return json(spec.status, dialect.errorBody(spec.status, spec.errorMessage, req.headers), extra);
    }
    try {
      await dialect.stream(res, spec, body);
    } catch {
      res.destroy(); // the client went away mid-stream
    }
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const root = `http://127.0.0.1:${port}`;
  return {
    url: dialect === openai ? `${root}/v1` : root,
    requests,
    responses,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes SSE events one by one, honouring delayMs, breakMidStream and a client that hangs up. */
async function writeEvents(res: http.ServerResponse, spec: FakeResponse, events: string[]): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const cut = spec.breakMidStream ? Math.max(2, Math.floor(events.length / 2)) : events.length;
  for (let i = 0; i < cut; i++) {
    if (res.destroyed) return;
    if (i > 0 && spec.delayMs) await new Promise((r) => setTimeout(r, spec.delayMs));
    if (res.destroyed) return;
    // Wait for the bytes to reach the socket, so a break below cannot swallow them.
    await new Promise<void>((resolve, reject) => res.write(events[i], (err) => (err ? reject(err) : resolve())));
  }
  // Destroying the socket (rather than ending the response) is what a dropped connection looks like.
  if (spec.breakMidStream) res.socket?.destroy();
  else res.end();
}

/** Word-sized pieces that concatenate back to `text`, like a model's token stream. */
function pieces(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((s) => s !== '');
}

/** Splits a JSON string into a few fragments, the way input_json_delta / arguments arrive. */
function jsonFragments(json: string): string[] {
  const size = Math.max(1, Math.ceil(json.length / 3));
  const out: string[] = [];
  for (let i = 0; i < json.length; i += size) out.push(json.slice(i, i + size));
  return out;
}

let seq = 0;
const nextId = (prefix: string) => `${prefix}${Date.now().toString(36)}${(++seq).toString(36).padStart(4, '0')}`;

const ANTHROPIC_ERROR_TYPES: Record<number, [string, string]> = {
  400: ['invalid_request_error', 'Invalid request'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'],
  500: ['api_error', 'Internal server error'],
  529: ['overloaded_error', 'Overloaded'],
};

const anthropic: Dialect = {
  basePath: '/v1/messages',
  // SDK 1.x sends the key as a bearer token; older clients and curl use x-api-key. The API takes both.
  authorized: (h, key) => h['x-api-key'] === key || h.authorization === `Bearer ${key}`,
  errorBody(status, message) {
    const [type, def] = ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? ['api_error', 'Internal server error'] : ['invalid_request_error', 'Invalid request']);
    return { type: 'error', error: { type, message: message ?? def }, request_id: nextId('req_') };
  },
  async stream(res, spec, body) {
    const ev = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    const usage = { input_tokens: 25, output_tokens: 1 };
    const events: string[] = [
      ev('message_start', {
        type: 'message_start',
        message: {
          id: nextId('msg_'),
          type: 'message',
          role: 'assistant',
          model: body?.model ?? 'claude-sonnet-4-5',
          content: [],
          container: null,
          diagnostics: null,
          stop_reason: null,
          stop_sequence: null,
          stop_details: null,
          usage: { ...usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, service_tier: 'standard' },
        },
      }),
    ];
    let index = 0;
    if (spec.text) {
      events.push(ev('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }));
      events.push('event: ping\ndata: {"type": "ping"}\n\n');
      for (const text of pieces(spec.text)) {
        events.push(ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text } }));
      }
      events.push(ev('content_block_stop', { type: 'content_block_stop', index }));
      index++;
    }
    for (const call of spec.toolCalls ?? []) {
      const block = { type: 'tool_use', id: call.id ?? nextId('toolu_'), name: call.name, input: {} };
      events.push(ev('content_block_start', { type: 'content_block_start', index, content_block: block }));
      for (const partial_json of ['', ...jsonFragments(call.rawInput ?? JSON.stringify(call.input ?? {}))]) {
        events.push(
          ev('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } }),
        );
      }
      events.push(ev('content_block_stop', { type: 'content_block_stop', index }));
      index++;
    }
    const stop_reason = spec.toolCalls?.length ? 'tool_use' : 'end_turn';
    events.push(
      ev('message_delta', {
        type: 'message_delta',
        delta: { stop_reason, stop_sequence: null, stop_details: null, container: null },
        usage: { output_tokens: 12 },
      }),
    );
    events.push(ev('message_stop', { type: 'message_stop' }));
    res.setHeader('request-id', nextId('req_'));
    await writeEvents(res, spec, events);
  },
};

const OPENAI_ERRORS: Record<number, [string, string | null, string]> = {
  400: ['invalid_request_error', null, 'Invalid request'],
  403: ['invalid_request_error', 'unsupported_country_region_territory', 'Country, region, or territory not supported'],
  404: ['invalid_request_error', 'model_not_found', 'The model does not exist or you do not have access to it.'],
  429: ['requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again in 20ms.'],
  500: ['server_error', null, 'The server had an error while processing your request. Sorry about that!'],
};

const openai: Dialect = {
  basePath: '/v1/chat/completions',
  authorized: (h, key) => h.authorization === `Bearer ${key}`,
  errorBody(status, message, headers) {
    if (status === 401) {
      // Like the real API, echo a masked form of the key that was sent.
      const sent = String(headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      const masked = sent.length > 8 ? `${sent.slice(0, 3)}${'*'.repeat(sent.length - 7)}${sent.slice(-4)}` : '***';
      return {
        error: {
          message:
            message ??
            `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      };
    }
    const [type, code, def] = OPENAI_ERRORS[status] ?? (status >= 500 ? OPENAI_ERRORS[500] : OPENAI_ERRORS[400]);
    return { error: { message: message ?? def, type, param: null, code } };
  },
  async stream(res, spec, body) {
    const id = nextId('chatcmpl-');
    const created = Math.floor(Date.now() / 1000);
    const model = body?.model ?? 'gpt-4o-mini';
    const chunk = (delta: unknown, finish_reason: string | null = null) =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: 'fp_fake000000',
        choices: [{ index: 0, delta, logprobs: null, finish_reason }],
      })}\n\n`;
    const calls = spec.toolCalls ?? [];
    const events = [chunk({ role: 'assistant', content: calls.length && !spec.text ? null : '', refusal: null })];
    for (const content of pieces(spec.text ?? '')) events.push(chunk({ content }));
    calls.forEach((call, index) => {
      const head = { index, id: call.id ?? nextId('call_'), type: 'function', function: { name: call.name, arguments: '' } };
      events.push(chunk({ tool_calls: [head] }));
      for (const args of jsonFragments(call.rawInput ?? JSON.stringify(call.input ?? {}))) {
        events.push(chunk({ tool_calls: [{ index, function: { arguments: args } }] }));
      }
    });
    events.push(chunk({}, calls.length ? 'tool_calls' : 'stop'));
    events.push('data: [DONE]\n\n');
    res.setHeader('x-request-id', nextId('req_'));
    await writeEvents(res, spec, events);
  },
};
