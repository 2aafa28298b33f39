/**
 * ProjectSubscription, the Socket.IO push channel (seed 004) — `io(url, {auth: {token}})`, then
 * `subscribe` with an ack, again after every reconnect, so the room is kept across dropped
 * connections — and the emitter and queue it shares with AgentConnection (agent-connection.ts).
 * Nothing here needs Node: it is part of the browser entry.
 */
import { io, type Socket } from 'socket.io-client';
import { TroupeConnectionError, TroupeError } from './errors.js';
import type { SessionStatus } from './types.js';

/** The few EventEmitter calls the channels use, without node:events (so this runs in a browser too). */
export class Emitter {
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
export class Feed<T> implements AsyncIterable<T> {
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
