/**
 * A session's SSE stream as an async iterator of typed events (README "Streams").
 *
 * It resumes by itself: when the connection drops it reconnects with Last-Event-ID = the last
 * durable event it yielded, so durable events (which carry `id: <event_index>`) come with no gap
 * and no duplicate; live frames (text and tool-output deltas) are buffered by the server until
 * their message is durable and replayed to a reconnecting client, and the iterator skips the ones
 * it has already yielded (by `activation:seq`, as the server does). It ends when the session does:
 * after `session_completed` / `session_failed`, or a terminal status, or a 204 (nothing left).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { isNetworkError, TroupeConnectionError, TroupeError } from './errors.js';
import type { Transport } from './http.js';
import { TERMINAL_STATUSES, type SessionEvent, type SessionStatus } from './types.js';
import { describe } from './http.js';

/** Fields every live frame carries. */
export interface LiveFields { session_id: string; activation: number; seq: number; at: number }

export type StreamEvent =
  | { type: 'text_delta'; data: LiveFields & { turn: number; delta: string } }
  | { type: 'tool_use_start'; data: LiveFields & { tool_use_id: string; name: string; input: unknown } }
  | { type: 'tool_output_delta'; data: LiveFields & { tool_use_id: string; stream: 'stdout' | 'stderr'; chunk: string } }
  | { type: 'live_truncated'; data: { dropped_bytes: number } }
  | { type: 'user_message' | 'tool_use_complete' | 'tool_result' | 'status' | 'session_error'; id: number; data: SessionEvent }
  | { type: 'text_complete'; id: number; data: SessionEvent & { text: string } }
  | { type: 'session_completed'; data: { session_id: string; event_index: number } }
  | { type: 'session_failed'; data: { session_id: string; event_index: number; error?: string } };

export type StreamEventType = StreamEvent['type'];

export interface StreamOptions {
  /** Start after this durable event (its event_index); by default the whole session is replayed. */
  lastEventId?: number;
  /** Stop the stream (the iterator then ends without an error). */
  signal?: AbortSignal;
  /** Reconnect attempts in a row without receiving anything before giving up (default 20). */
  maxReconnects?: number;
  /** First reconnect delay in ms, doubled per failed attempt up to 5 s (default 200). */
  reconnectDelayMs?: number;
  /** Longest wait between two reconnect attempts in ms (default 5000). */
  maxReconnectDelayMs?: number;
  /** Called before each reconnect (after a dropped connection), e.g. to show it. */
  onReconnect?: (info: { attempt: number; lastEventId: number; reason: string }) => void;
  /** Called each time the stream is open (the first time and after every reconnect), e.g. to stop showing a reconnect. */
  onConnect?: (info: { lastEventId: number }) => void;
}

const LIVE = new Set(['text_delta', 'tool_use_start', 'tool_output_delta']);
const FINAL = new Set(['session_completed', 'session_failed']);

export async function* streamSession(t: Transport, sessionId: string, opts: StreamOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
  let last = opts.lastEventId ?? -1;
  let seen = new Set<string>();
  let terminal = false;
  let failures = 0;
  const max = opts.maxReconnects ?? 20;
  const base = opts.reconnectDelayMs ?? 200;
  const cap = opts.maxReconnectDelayMs ?? 5000;
  const path = `/api/v1/sessions/${encodeURIComponent(sessionId)}/stream`;

  const backoff = async (reason: string) => {
    failures++;
    if (failures > max) throw new TroupeConnectionError(`The stream of session ${sessionId} could not be resumed after ${max} attempts (${reason})`, `GET ${path}`);
    opts.onReconnect?.({ attempt: failures, lastEventId: last, reason });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(base * 2 ** (failures - 1), cap));
      opts.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  };

  while (!terminal && !opts.signal?.aborted) {
    let res: Response;
    try {
      res = await t.raw(path, {
        headers: { accept: 'text/event-stream', ...(last >= 0 ? { 'last-event-id': String(last) } : {}) },
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (!isNetworkError(err)) throw err;
      await backoff(describe(err));
      continue;
    }
    if (res.status === 204) return; // a finished session with nothing after `last`
    if (!res.ok) {
      const err = await TroupeError.fromResponse(res, `GET ${path}`);
      if (res.status >= 500 || res.status === 429) {
        await backoff(`HTTP ${res.status}: ${err.message}`);
        continue;
      }
      throw err;
    }

    opts.onConnect?.({ lastEventId: last });
    const frames: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (m) => frames.push(m) });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let reason = 'the server ended the stream';
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (opts.signal?.aborted) return;
          reason = describe(err);
          break;
        }
        if (chunk.done) break;
        parser.feed(chunk.value);
        while (frames.length) {
          const m = frames.shift()!;
          const name = m.event ?? 'message';
          if (name === 'keepalive') continue;
          failures = 0; // something came: the connection works
          const data = JSON.parse(m.data);
          if (m.id !== undefined && m.id !== '') {
            const index = Number(m.id);
            if (index <= last) continue; // already yielded before a reconnect
            last = index;
            const ev = data as SessionEvent;
            if (ev.event_type === 'message' || ev.event_type === 'tool_result') seen = new Set();
            yield { type: name, id: index, data } as StreamEvent;
            const status = ev.event_type === 'status' ? (ev.payload?.status as SessionStatus | undefined) : undefined;
            // `stopped` ends the stream with no final frame; completed/failed have one, next.
            if (status === 'stopped') terminal = true;
            else if (status && TERMINAL_STATUSES.includes(status)) terminal = true;
            continue;
          }
          if (LIVE.has(name)) {
            const key = `${data.activation}:${data.seq}`;
            if (seen.has(key)) continue;
            seen.add(key);
          }
          yield { type: name, data } as StreamEvent;
          if (FINAL.has(name)) return;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    if (terminal || opts.signal?.aborted) return;
    await backoff(reason);
  }
}
