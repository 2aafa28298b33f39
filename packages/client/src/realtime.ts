/**
 * The two push channels besides SSE:
 *  - ProjectSubscription: Socket.IO (seed 004) — `io(url, {auth: {token}})`, then `subscribe`
 *    with an ack, again after every reconnect, so the room is kept across dropped connections.
 *  - AgentConnection: the agent WebSocket /ws (seed 003). The server does not queue events for a
 *    disconnected socket; after each reconnect the connection reads `GET /api/v1/updates?after=`
 *    from the last cursor it delivered, delivers what was missed in order, and skips what it
 *    already delivered (cursors only grow), so a consumer sees each event once.
 */
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { TroupeConnectionError, TroupeError } from './errors.js';
import { Transport } from './http.js';
import type { HubEvent, SessionStatus, UpdatesPage } from './types.js';

/** The few EventEmitter calls the channels use, without node:events (so this runs in a browser too). */
class Emitter {
  private readonly handlers = new Map<string, Set<(data: any) => void>>();
  on(event: string, handler: (data: any) => void) {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
  }
  off(event: string, handler: (data: any) => void) {
    this.handlers.get(event)?.delete(handler);
  }
  emit(event: string, data?: unknown) {
    // As node:events does: an 'error' nobody listens to is thrown.
    if (event === 'error' && !this.listenerCount('error')) throw data;
    for (const h of [...(this.handlers.get(event) ?? [])]) h(data);
  }
  listenerCount(event: string) {
    return this.handlers.get(event)?.size ?? 0;
  }
}

/** A simple queue turned async iterator, shared by both channels. */
class Feed<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: Array<(r: IteratorResult<T>) => void> = [];
  private done = false;
  push(item: T) {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) w({ value: item, done: false });
    else this.items.push(item);
  }
  end() {
    this.done = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The Socket.IO events of a project room (README "Streams"). */
export interface ProjectEvents {
  'agent:conversation:started': { conversation_id: string; agent_id: string; trigger_type: string };
  'agent:conversation:event': { conversation_id: string; event_type: string; event_source: string; event_index: number; payload: Record<string, any> };
  'agent:conversation:status': { conversation_id: string; status: SessionStatus };
  'agent:conversation:delta': { conversation_id: string; type: string; [k: string]: unknown };
  'agent:chat:reply': { message: unknown; session_id: string; conversation_id: string; message_id: string };
  access_revoked: { error: string };
}
export type ProjectEvent = { [K in keyof ProjectEvents]: { event: K; data: ProjectEvents[K] } }[keyof ProjectEvents];

export interface SubscribeOptions {
  /** Subscribe to one conversation's room (its deltas too) instead of the project's. */
  conversationId?: string;
  /** Give up connecting after this long (default 10 s). */
  timeoutMs?: number;
}

export class ProjectSubscription implements AsyncIterable<ProjectEvent> {
  private readonly feed = new Feed<ProjectEvent>();
  private readonly emitter = new Emitter();

  private constructor(readonly socket: Socket, private readonly target: Record<string, string>) {
    socket.onAny((event: string, data: unknown) => {
      const e = { event, data } as ProjectEvent;
      this.feed.push(e);
      this.emitter.emit(event, data);
      if (event === 'access_revoked') this.close();
    });
  }

  static async open(baseUrl: string, token: string, target: Record<string, string>, timeoutMs = 10_000): Promise<ProjectSubscription> {
    const socket = io(baseUrl, { auth: { token }, transports: ['websocket'], reconnectionDelayMax: 5000 });
    const sub = new ProjectSubscription(socket, target);
    const join = async () => {
      const ack = await socket.timeout(timeoutMs).emitWithAck('subscribe', target) as { ok?: boolean; error?: string };
      if (!ack?.ok) throw new TroupeError(ack?.error?.includes('not found') ? 404 : 403, ack?.error ?? 'subscribe was refused');
    };
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TroupeConnectionError(`Socket.IO did not connect to ${baseUrl} within ${timeoutMs} ms`)), timeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('connect_error', (err: Error) => {
          clearTimeout(timer);
          reject(/auth|token|unauthor/i.test(err.message) ? new TroupeError(401, err.message) : new TroupeConnectionError(`Socket.IO could not connect to ${baseUrl}: ${err.message}`));
        });
      });
      await join();
    } catch (err) {
      socket.close();
      throw err;
    }
    // After a dropped connection Socket.IO reconnects by itself; the room must be joined again.
    socket.io.on('reconnect', () => void join().catch((err) => sub.emitter.emit('error', err)));
    return sub;
  }

  /** Calls `handler` for each `event` of the room. */
  on<K extends keyof ProjectEvents>(event: K, handler: (data: ProjectEvents[K]) => void): this;
  on(event: 'error', handler: (err: Error) => void): this;
  on(event: string, handler: (data: any) => void): this {
    this.emitter.on(event, handler);
    return this;
  }

  off(event: string, handler: (data: any) => void): this {
    this.emitter.off(event, handler);
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<ProjectEvent> {
    return this.feed[Symbol.asyncIterator]();
  }

  close(): void {
    this.socket.close();
    this.feed.end();
  }
}

export interface ConnectOptions {
  /** Deliver what happened after this cursor first (from /api/v1/updates), then live events. */
  after?: string;
  /** First reconnect delay in ms, doubled up to 5 s (default 200). */
  reconnectDelayMs?: number;
  /** Attempts before giving up when the first connection cannot be made (default 8); once connected it reconnects for as long as it is open. */
  maxConnectAttempts?: number;
}

const newer = (a: string, b: string | undefined) => b === undefined || BigInt(a) > BigInt(b);

/**
 * The agent WebSocket, kept open. Events come in cursor order, each once: live ones as they
 * happen, missed ones (while disconnected) from the updates log after a reconnect.
 */
export class AgentConnection implements AsyncIterable<HubEvent> {
  private readonly feed = new Feed<HubEvent>();
  private readonly emitter = new Emitter();
  private ws: WebSocket | undefined;
  private closed = false;
  private attempts = 0;
  /** Live events that came while the missed ones were being read. */
  private held: HubEvent[] | null = null;
  private reconnected = false;
  /** The agent's id (from the server's first frame). */
  agentId: string | undefined;
  /** The cursor of the last event delivered: where a reconnect resumes. */
  cursor: string | undefined;
  /** Resolves on the first `connected` frame. */
  readonly ready: Promise<void>;
  /** When this connection was made: with no cursor yet, a recovery delivers nothing older. */
  private readonly since = Date.now();

  constructor(private readonly baseUrl: string, private readonly apiKey: string, private readonly opts: ConnectOptions = {}) {
    this.cursor = opts.after;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.ready.catch(() => {});
    this.open(resolve, reject);
  }

  private open(resolve?: () => void, reject?: (err: Error) => void) {
    const url = this.baseUrl.replace(/^http/, 'ws') + '/ws';
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.apiKey}` } });
    this.ws = ws;
    let first = true;
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => {
        const err = TroupeError.fromBody(res.statusCode ?? 0, body, (res.headers['retry-after'] as string | undefined) ?? null, 'GET /ws');
        // A refused key is final; anything else (429, 5xx) is worth another try, later.
        if ([401, 403, 404].includes(err.status)) return this.fail(err, reject);
        this.emitter.emit('socket_error', err);
        ws.terminate();
      });
    });
    ws.on('message', (raw) => {
      let msg: HubEvent | { type: 'connected' | 'pong'; agentId?: string };
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (msg.type === 'connected') {
        this.agentId = msg.agentId;
        if (first) {
          first = false;
          // Recover what was missed since the last cursor (the first time only if `after` was given).
          if (this.cursor !== undefined || this.attempts > 0 || this.reconnected) void this.recover();
          this.reconnected = true;
          this.attempts = 0;
          resolve?.();
          this.emitter.emit('connected', { agentId: msg.agentId, cursor: this.cursor });
        }
        return;
      }
      if (msg.type === 'pong' || !('cursor' in msg)) return;
      if (this.held) this.held.push(msg);
      else this.deliver(msg);
    });
    ws.on('error', (err) => this.emitter.emit('socket_error', err));
    ws.on('close', (code, reason) => {
      if (this.closed) return;
      if (code === 4401) return this.fail(new TroupeError(401, String(reason) || 'API key revoked or agent deleted'), reject);
      this.emitter.emit('disconnected', { code, reason: String(reason) });
      if (!this.agentId && this.attempts >= (this.opts.maxConnectAttempts ?? 8)) {
        return this.fail(new TroupeConnectionError(`Could not open the agent WebSocket at ${this.baseUrl}/ws after ${this.attempts + 1} attempts: is the server running?`, 'GET /ws'), reject);
      }
      const delay = Math.min((this.opts.reconnectDelayMs ?? 200) * 2 ** this.attempts++, 5000);
      setTimeout(() => {
        if (!this.closed) this.open(resolve, reject);
      }, delay);
    });
  }

  private fail(err: TroupeError, reject?: (err: Error) => void): void {
    reject?.(err);
    if (this.emitter.listenerCount('error')) this.emitter.emit('error', err);
    this.close();
  }

  private deliver(e: HubEvent) {
    if (!newer(e.cursor, this.cursor)) return; // already delivered (live, then again from the log)
    this.cursor = e.cursor;
    this.feed.push(e);
    this.emitter.emit('event', e);
    this.emitter.emit(e.type, e);
  }

  /** Reads the updates log from the last cursor, then releases the live events held meanwhile. */
  private async recover() {
    this.held = [];
    const t = new Transport({ baseUrl: this.baseUrl, token: this.apiKey });
    try {
      let after = this.cursor;
      for (;;) {
        const page = await t.unwrap<UpdatesPage>(t.api.GET('/api/v1/updates', { params: { query: { after, limit: 500 } } }));
        for (const e of page.events) {
          // Nothing delivered yet and no `after`: only what happened since we connected is missed.
          if (this.cursor === undefined && Date.parse(String(e.createdAt)) < this.since - 1000) continue;
          this.deliver(e);
        }
        if (!page.has_more || !page.next_cursor) break;
        after = page.next_cursor;
      }
    } catch (err) {
      this.emitter.emit('error', err);
    } finally {
      const held = this.held ?? [];
      this.held = null;
      for (const e of held) this.deliver(e);
      this.emitter.emit('recovered', { cursor: this.cursor });
    }
  }

  /** 'event' (every event), or one type ('task.created', ...); 'connected', 'disconnected', 'recovered', 'error'. */
  on(event: string, handler: (data: any) => void): this {
    this.emitter.on(event, handler);
    return this;
  }

  off(event: string, handler: (data: any) => void): this {
    this.emitter.off(event, handler);
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<HubEvent> {
    return this.feed[Symbol.asyncIterator]();
  }

  /** Drops the current socket (as a network failure would); it reconnects and recovers. For tests and demos. */
  dropConnection(): void {
    this.ws?.terminate();
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
    this.feed.end();
  }
}
