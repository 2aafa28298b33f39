/**
 * The live side: the project's Socket.IO room (the sessions list) and one session's SSE stream,
 * both resuming without a gap or a duplicate, and one connection state for the "reconnecting…"
 * banner.
 *
 * The SSE stream is read with fetch (token in the Authorization header, never in a URL) and
 * parsed by eventsource-parser. Its reconnect rules follow src/realtime/sse.ts:
 *  - durable events carry `id: <event_index>`; we reconnect with `Last-Event-ID: <last we have>`
 *    and get exactly the durable events after it, then the live stream;
 *  - live frames (text_delta, tool_use_start, tool_output_delta) have no id; on a reconnect the
 *    server replays the in-progress message's buffered frames, which carry the same
 *    (activation, seq) as before: we drop the pairs we already have, and forget them once a
 *    durable message or tool result is in (as the server does);
 *  - a finished session whose last status we already have answers 204: we stop.
 */
import { io, type Socket } from 'socket.io-client';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { auth, type SessionEvent } from './api';

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
  onStatus?(e: { conversation_id: string; status: string }): void;
  onStarted?(e: { conversation_id: string; agent_id: string; trigger_type: string }): void;
  onEvent?(e: { conversation_id: string; event_type: string; event_index: number; payload: unknown }): void;
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
  socket.on('access_revoked', (e: { error: string }) => h.onError?.(e.error));
  socket.on('agent:conversation:status', (e) => h.onStatus?.(e));
  socket.on('agent:conversation:started', (e) => h.onStarted?.(e));
  socket.on('agent:conversation:event', (e) => h.onEvent?.(e));
  return () => {
    setDown(key, false);
    socket.disconnect();
  };
}

// ---- SSE: one session -----------------------------------------------------------------------

export interface LiveFrame { session_id: string; activation: number; seq: number; at?: number }
export interface TextDelta extends LiveFrame { turn: number; delta: string }
export interface ToolUseStart extends LiveFrame { tool_use_id: string; name: string; input: unknown }
export interface ToolOutputDelta extends LiveFrame { tool_use_id: string; stream: 'stdout' | 'stderr'; chunk: string }

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

const LIVE = new Set(['text_delta', 'tool_use_start', 'tool_output_delta']);

/**
 * Streams a session from just after `lastEventIndex` (-1: from the start) until it ends or the
 * returned function is called; reconnects by itself, with a growing delay, resuming from the
 * last durable event it delivered.
 */
export function streamSession(sessionId: string, lastEventIndex: number, h: SessionStreamHandlers): () => void {
  const key = `session:${sessionId}`;
  const ctrl = new AbortController();
  let last = lastEventIndex;
  const seen = new Set<string>();
  let attempt = 0;
  let stopped = false;

  const run = async () => {
    while (!stopped) {
      let ended = false;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        const token = auth.token();
        if (token) headers.authorization = `Bearer ${token}`;
        if (last >= 0) headers['last-event-id'] = String(last);
        const res = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}/stream`, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (res.status === 204) {
          setDown(key, false);
          h.onEnd?.();
          return;
        }
        if (!res.ok || !res.body) {
          const body = await res.json().catch(() => null) as { error?: string } | null;
          // 4xx: the server said no (token, access); retrying will not change it.
          if (res.status >= 400 && res.status < 500) {
            setDown(key, false);
            h.onError?.(body?.error ?? `HTTP ${res.status}`);
            return;
          }
          throw new Error(body?.error ?? `HTTP ${res.status}`);
        }
        setDown(key, false);
        h.onConnected?.(true);
        attempt = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
        for (;;) {
          const { value: msg, done } = await reader.read();
          if (done) break;
          const name = msg.event ?? 'message';
          if (name === 'keepalive') continue;
          const data = JSON.parse(msg.data);
          if (LIVE.has(name)) {
            const k = `${data.activation}:${data.seq}`;
            if (seen.has(k)) continue;
            seen.add(k);
            if (name === 'text_delta') h.onTextDelta(data);
            else if (name === 'tool_use_start') h.onToolStart(data);
            else h.onToolOutput(data);
          } else if (name === 'session_completed' || name === 'session_failed') {
            ended = true;
          } else if (msg.id !== undefined && typeof data.event_index === 'number') {
            if (data.event_index <= last) continue;
            last = data.event_index;
            if (data.event_type === 'message' || data.event_type === 'tool_result') seen.clear();
            h.onDurable(name, data as SessionEvent);
            const status = data.event_type === 'status' ? data.payload?.status : undefined;
            if (status === 'completed' || status === 'failed' || status === 'stopped') ended = true;
          }
        }
      } catch (err) {
        if (stopped || (err as Error).name === 'AbortError') return;
      }
      if (ended) {
        setDown(key, false);
        h.onEnd?.();
        return;
      }
      if (stopped) return;
      // The stream dropped (network, api restart): say so, wait a little, resume from `last`.
      setDown(key, true);
      h.onConnected?.(false);
      attempt++;
      await new Promise((r) => setTimeout(r, Math.min(2000, 250 * 2 ** Math.min(attempt, 4))));
    }
  };
  void run();
  return () => {
    stopped = true;
    setDown(key, false);
    ctrl.abort();
  };
}
