/**
 * AgentConnection: the agent WebSocket /ws (seed 003). The server does not queue events for a
 * disconnected socket; after each reconnect the connection reads `GET /api/v1/updates?after=`
 * from the last cursor it delivered, delivers what was missed in order, and skips what it
 * already delivered (cursors only grow), so a consumer sees each event once. Node only: the key
 * goes in an Authorization header, which only `ws` can set (not a browser's WebSocket).
 */
import WebSocket from 'ws';
import { TroupeConnectionError, TroupeError } from './errors.js';
import { Transport } from './http.js';
import { Emitter, Feed } from './realtime.js';
import type { HubEvent, UpdatesPage } from './types.js';

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
