/**
 * The benchmark talks to Troupe only as a client would: REST with a user JWT, the per-session SSE
 * stream read with a raw fetch reader (every frame stamped with its arrival time), and
 * socket.io-client subscribed to conversation rooms.
 */
import crypto from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { request, userToken as signToken } from '../../test/support/http.js';
import { IMAGE, JWT_SECRET } from './stack.js';
import { checkAborted, now, sleep } from './util.js';

export const userToken = (userId: string) => signToken(userId, JWT_SECRET);

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    super(`${what} → ${status} ${typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body)?.slice(0, 300)}`);
  }
}

export interface ScriptTurn {
  text?: string;
  tool_calls?: Array<{ name: string; input: Record<string, unknown> }>;
}

export class Api {
  projectId = '';
  constructor(readonly url: string, readonly token: string) {}

  static async connect(url: string): Promise<Api> {
    const api = new Api(url, await userToken(`bench-${crypto.randomBytes(4).toString('hex')}`));
    const p = await api.call('POST', '/api/v1/projects', { name: `bench-${new Date().toISOString()}` }, 201);
    api.projectId = p.id;
    return api;
  }

  /** The kit's request (test/support/http.ts); throws ApiError on an unexpected status. */
  async call(method: string, path: string, body?: unknown, expect?: number): Promise<any> {
    const res = await request(this.url, method, path, { token: this.token, body });
    if (expect !== undefined ? res.status !== expect : res.status >= 400) throw new ApiError(res.status, res.body, `${method} ${path}`);
    return res.body;
  }

  /** A scripted agent on the minimal image. */
  async agent(name: string, script: { turns: ScriptTurn[]; token_delay_ms?: number }, extra: Record<string, unknown> = {}): Promise<{ id: string }> {
    return this.call('POST', `/api/v1/projects/${this.projectId}/agents`, {
      name: `${name}-${crypto.randomBytes(3).toString('hex')}`,
      llm_provider: 'scripted',
      sandbox: { image: IMAGE },
      script,
      max_iterations: Math.max(50, script.turns.length + 10),
      ...extra,
    }, 201);
  }

  /** POST /api/v1/sessions: a session with its own new sandbox; with a message it starts at once. */
  async session(agentId: string, message?: string): Promise<{ id: string; status: string }> {
    return this.call('POST', '/api/v1/sessions', { agent_id: agentId, project_id: this.projectId, ...(message ? { message } : {}) }, 201);
  }

  conv(id: string, suffix = ''): string {
    return `/api/v1/projects/${this.projectId}/conversations/${id}${suffix}`;
  }

  control(id: string, action: 'pause' | 'resume' | 'stop') {
    return this.call('POST', this.conv(id, `/${action}`), {});
  }

  message(id: string, text: string) {
    return this.call('POST', this.conv(id, '/message'), { message: text });
  }

  conversation(id: string) {
    return this.call('GET', this.conv(id));
  }

  async events(id: string): Promise<any[]> {
    return (await this.call('GET', this.conv(id, '/events?limit=1000'))).events;
  }

  async countByStatus(agentId: string, status: string): Promise<number> {
    return (await this.call('GET', `/api/v1/projects/${this.projectId}/agents/${agentId}/conversations?status=${status}&limit=1`)).total;
  }

  /** Stops sessions (removing their containers); failures are ignored (already stopped, etc.). */
  async stopAll(ids: string[], parallel = 6): Promise<void> {
    const queue = [...ids];
    await Promise.all(Array.from({ length: parallel }, async () => {
      for (let id = queue.shift(); id; id = queue.shift()) await this.control(id, 'stop').catch(() => {});
    }));
  }
}

export interface Frame {
  event: string;
  id: string | null;
  data: any;
  /** performance.now() when the chunk carrying it arrived. */
  at: number;
}

/**
 * A raw SSE reader over fetch: no reconnection, no parsing beyond what the server sends
 * (`id:`, `event:`, one-line `data:` JSON). Lighter than an EventSource when a hundred run here.
 */
export class SseClient {
  readonly frames: Frame[] = [];
  private readonly ac = new AbortController();
  private waiters: Array<() => void> = [];
  closed = false;
  error: Error | null = null;
  onFrame?: (f: Frame) => void;
  /** Keep frames in `frames` (off for long delta streams, where onFrame does the work). */
  keep = true;
  readonly ready: Promise<void>;

  constructor(url: string, token: string, lastEventId?: number) {
    this.ready = this.run(url, token, lastEventId);
    this.ready.catch(() => {});
  }

  private async run(url: string, token: string, lastEventId?: number): Promise<void> {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}) },
      signal: this.ac.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`SSE ${url} → ${res.status}`);
    void this.read(res.body).catch((err) => {
      if (!this.closed) this.error = err as Error;
    }).finally(() => {
      this.closed = true;
      this.wake();
    });
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      const at = now();
      buf += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const raw = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = 'message';
        let id: string | null = null;
        let data = '';
        for (const line of raw.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (!data) continue;
        const frame: Frame = { event, id, data: JSON.parse(data), at };
        if (this.keep) this.frames.push(frame);
        this.onFrame?.(frame);
      }
      this.wake();
    }
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the first kept frame (from index `from`) matching `pred`. */
  async waitFrame(what: string, pred: (f: Frame) => boolean, opts: { from?: number; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Frame> {
    const deadline = now() + (opts.timeoutMs ?? 30_000);
    let i = opts.from ?? 0;
    for (;;) {
      for (; i < this.frames.length; i++) if (pred(this.frames[i])) return this.frames[i];
      checkAborted(opts.signal);
      if (this.error) throw this.error;
      if (this.closed) throw new Error(`SSE stream ended before ${what}`);
      if (now() > deadline) throw new Error(`timed out waiting for ${what} on the SSE stream`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(100)]);
    }
  }

  close(): void {
    this.closed = true;
    this.ac.abort();
    this.wake();
  }
}

export function openSse(api: Api, sessionId: string, lastEventId?: number): SseClient {
  return new SseClient(`${api.url}/api/v1/sessions/${sessionId}/stream`, api.token, lastEventId);
}

/** A Socket.IO dashboard client (websocket transport), authenticated in the handshake. */
export async function socketClient(api: Api): Promise<Socket> {
  const socket = io(api.url, { auth: { token: api.token }, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('Socket.IO connect timed out')), 15_000);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
    socket.once('connect_error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
  return socket;
}

export async function subscribeConversation(socket: Socket, conversationId: string): Promise<void> {
  const reply = await socket.timeout(10_000).emitWithAck('subscribe', { conversation_id: conversationId });
  if (!reply?.ok) throw new Error(`Socket.IO subscribe failed: ${JSON.stringify(reply)}`);
}
