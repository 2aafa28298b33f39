/**
 * The live side: the project's Socket.IO room (the sessions list) and one session's SSE stream,
 * both resuming without a gap or a duplicate, and one connection state for the "reconnecting…"
 * banner.
 *
 * The session stream is the client package's (`troupe().sessions.stream`): fetch with the token
 * in the Authorization header (never in a URL), resumed after a drop with Last-Event-ID = the last
 * durable event delivered (no gap, no duplicate), live frames replayed by the server skipped by
 * (activation, seq), ended by a terminal status or a 204. Here it is only wired to the views and
 * to the banner: down from a dropped connection until the stream is open again.
 *
 * The project room keeps its own Socket.IO socket rather than the client's ProjectSubscription:
 * the page must keep retrying for as long as it is open (the subscription gives up when the first
 * connection fails) and re-read what it shows after each reconnect.
 */
import { io, type Socket } from 'socket.io-client';
import { auth, troupe, TroupeError, type SessionEvent } from './api';
import type { LiveFields, ProjectEvents, StreamEvent } from '@troupe/client/browser';

// ---- connection state (for the banner) ------------------------------------------------------

type ConnState = { down: Set<string> };
const state: ConnState = { down: new Set() };
const watchers = new Set<() => void>();
export function setDown(key: string, down: boolean) {
  const had = state.down.has(key);
  if (down === had) return;
  if (down) state.down.add(key);
  else state.down.delete(key);
  for (const w of watchers) w();
}
export const connection = {
  reconnecting: () => state.down.size > 0,
  subscribe(fn: () => void) {
    watchers.add(fn);
    return () => void watchers.delete(fn);
  },
};

// ---- Socket.IO: the project room ------------------------------------------------------------

export interface ProjectFeedHandlers {
  onStatus?(e: ProjectEvents['agent:conversation:status']): void;
  onStarted?(e: ProjectEvents['agent:conversation:started']): void;
  onEvent?(e: ProjectEvents['agent:conversation:event']): void;
  /** After a reconnect: events may have been missed while away, so re-read what the view shows. */
  onResync?(): void;
  onError?(message: string): void;
}

/** Joins the project's room (again after every reconnect); returns a function that leaves. */
export function watchProject(projectId: string, h: ProjectFeedHandlers): () => void {
  const key = `project:${projectId}`;
  const socket: Socket = io({ auth: { token: auth.token() }, transports: ['websocket', 'polling'] });
  let first = true;
  socket.on('connect', () => {
    socket.emit('subscribe', { project_id: projectId }, (reply: { ok?: true; error?: string }) => {
      if (reply?.error) h.onError?.(reply.error);
    });
    setDown(key, false);
    if (!first) h.onResync?.();
    first = false;
  });
  socket.on('disconnect', (reason) => {
    // A disconnect we asked for is not an outage.
    if (reason !== 'io client disconnect') setDown(key, true);
  });
  socket.on('connect_error', (err) => {
    setDown(key, true);
    // A refused handshake (bad token) is not retried by Socket.IO by itself.
    if (!socket.active) h.onError?.(err.message);
  });
  socket.on('access_revoked', (e: ProjectEvents['access_revoked']) => h.onError?.(e.error));
  socket.on('agent:conversation:status', (e: ProjectEvents['agent:conversation:status']) => h.onStatus?.(e));
  socket.on('agent:conversation:started', (e: ProjectEvents['agent:conversation:started']) => h.onStarted?.(e));
  socket.on('agent:conversation:event', (e: ProjectEvents['agent:conversation:event']) => h.onEvent?.(e));
  return () => {
    setDown(key, false);
    socket.disconnect();
  };
}

// ---- SSE: one session -----------------------------------------------------------------------

type Live<T extends StreamEvent['type']> = Extract<StreamEvent, { type: T }>['data'];
export type LiveFrame = LiveFields;
export type TextDelta = Live<'text_delta'>;
export type ToolUseStart = Live<'tool_use_start'>;
export type ToolOutputDelta = Live<'tool_output_delta'>;

export interface SessionStreamHandlers {
  onDurable(name: string, e: SessionEvent): void;
  onTextDelta(d: TextDelta): void;
  onToolStart(d: ToolUseStart): void;
  onToolOutput(d: ToolOutputDelta): void;
  /** The stream is over for good: terminal, or 204 (nothing more will come). */
  onEnd?(): void;
  onError?(message: string): void;
  onConnected?(connected: boolean): void;
}

/**
 * Streams a session from just after `lastEventIndex` (-1: from the start) until it ends or the
 * returned function is called; reconnects by itself for as long as the page is open, resuming
 * from the last durable event it delivered.
 */
export function streamSession(sessionId: string, lastEventIndex: number, h: SessionStreamHandlers): () => void {
  const key = `session:${sessionId}`;
  const ctrl = new AbortController();
  const run = async () => {
    const stream = troupe().sessions.stream(sessionId, {
      ...(lastEventIndex >= 0 ? { lastEventId: lastEventIndex } : {}),
      signal: ctrl.signal,
      maxReconnects: Infinity,
      reconnectDelayMs: 250,
      maxReconnectDelayMs: 2000,
      onConnect: () => {
        setDown(key, false);
        h.onConnected?.(true);
      },
      // The stream dropped (network, api restart): say so; the client resumes from the last event.
      onReconnect: () => {
        if (ctrl.signal.aborted) return;
        setDown(key, true);
        h.onConnected?.(false);
      },
    });
    try {
      for await (const e of stream) {
        if (e.type === 'text_delta') h.onTextDelta(e.data);
        else if (e.type === 'tool_use_start') h.onToolStart(e.data);
        else if (e.type === 'tool_output_delta') h.onToolOutput(e.data);
        else if ('id' in e) h.onDurable(e.type, e.data);
      }
      setDown(key, false);
      if (!ctrl.signal.aborted) h.onEnd?.();
    } catch (err) {
      setDown(key, false);
      if (ctrl.signal.aborted || (err as Error).name === 'AbortError') return;
      // 4xx: the server said no (token, access); retrying will not change it.
      h.onError?.(err instanceof TroupeError ? err.message : String(err));
    }
  };
  void run();
  return () => {
    setDown(key, false);
    ctrl.abort();
  };
}
