/**
 * Streaming clients that survive an api restart the way real ones do:
 *  - SSE through the `eventsource` package, left to reconnect on its own (it sends Last-Event-ID);
 *  - Socket.IO through socket.io-client with reconnection on; on every (re)connect it subscribes
 *    again and backfills what it missed from the REST event log (Socket.IO itself replays nothing).
 */
import { EventSource } from 'eventsource';
import { io, type Socket } from 'socket.io-client';
import { SSE_EVENTS } from '../support/clients.js';
import { call } from './client.js';

export interface SseClient {
  sessionId: string;
  /** Durable event ids in the order received, repeats included. */
  ids: number[];
  opens: number;
  errors: number;
  /** New EventSources opened after one gave up (a non-200 answer ends an EventSource for good). */
  reopens: number;
  ended: boolean;
  close(): void;
}

/**
 * An SSE client as a careful app writes it: the `eventsource` package reconnects by itself (with
 * Last-Event-ID) after a network error; after a non-200 answer, which ends an EventSource for
 * good, the app opens a new one a second later, passing the last id it has.
 */
export function sseClient(base: string, sessionId: string, token: string): SseClient {
  let es: EventSource;
  let closed = false;
  const c: SseClient = {
    sessionId, ids: [], opens: 0, errors: 0, reopens: 0, ended: false,
    close: () => {
      closed = true;
      es.close();
    },
  };
  const open = (lastId?: number) => {
    es = new EventSource(`${base}/api/v1/sessions/${sessionId}/stream`, {
      fetch: (input, init) => fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}`, ...(lastId !== undefined && !(init?.headers as Record<string, string>)?.['Last-Event-ID'] ? { 'last-event-id': String(lastId) } : {}) },
      }),
    });
    const mine = es;
    es.onopen = () => c.opens++;
    es.onerror = () => {
      c.errors++;
      if (mine.readyState === mine.CLOSED && !closed && !c.ended) {
        setTimeout(() => {
          if (closed || c.ended) return;
          c.reopens++;
          open(c.ids.length ? Math.max(...c.ids) : undefined);
        }, 1000);
      }
    };
    for (const name of SSE_EVENTS) {
      es.addEventListener(name, (ev: MessageEvent) => {
        // Durable frames carry their own id (= event_index); live deltas carry none.
        if (ev.lastEventId) c.ids.push(Number(ev.lastEventId));
        if (name === 'session_completed' || name === 'session_failed') {
          c.ended = true;
          mine.close();
        }
      });
    }
  };
  open();
  return c;
}

/** Compares what SSE clients received with the durable logs: lost = missing ids, duplicated = repeats. */
export function sseVerdict(clients: SseClient[], logs: Map<string, number>) {
  let lost = 0;
  let duplicated = 0;
  const problems: string[] = [];
  for (const s of clients) {
    const n = logs.get(s.sessionId) ?? 0;
    const got = new Set(s.ids);
    const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !got.has(i));
    const extra = s.ids.length - got.size + [...got].filter((i) => i >= n || i < 0).length;
    lost += missing.length;
    duplicated += extra;
    if (missing.length || extra) problems.push(`SSE ${s.sessionId.slice(0, 8)}: missing ${missing.join(',') || '-'}; ${extra} repeated (opens ${s.opens}, reopens ${s.reopens})`);
  }
  return { lost, duplicated, problems };
}

export interface IoClient {
  socket: Socket;
  connects: number;
  /** event_index per conversation as delivered live, repeats included. */
  live: Map<string, number[]>;
  /** event_index per conversation recovered from REST after a reconnect. */
  backfilled: Map<string, Set<number>>;
  subscribeErrors: string[];
  close(): void;
}

/** A project dashboard: subscribes to the project room; backfills `sessions()` after reconnects. */
export function ioClient(base: string, token: string, projectId: string, sessions: () => string[]): IoClient {
  const socket = io(base, { auth: { token }, transports: ['websocket'], reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 1500 });
  const c: IoClient = { socket, connects: 0, live: new Map(), backfilled: new Map(), subscribeErrors: [], close: () => socket.close() };
  socket.on('agent:conversation:event', (d: { conversation_id: string; event_index: number }) => {
    const list = c.live.get(d.conversation_id) ?? [];
    list.push(d.event_index);
    c.live.set(d.conversation_id, list);
  });
  socket.on('connect', async () => {
    c.connects++;
    try {
      const ack = await socket.timeout(5000).emitWithAck('subscribe', { project_id: projectId });
      if (!ack?.ok) c.subscribeErrors.push(JSON.stringify(ack));
    } catch (err) {
      c.subscribeErrors.push(String(err));
    }
    if (c.connects > 1) {
      // What happened while we were away: from the log, after the subscription is in place.
      for (const id of sessions()) {
        const got = c.backfilled.get(id) ?? new Set<number>();
        for (let offset = 0; ; ) {
          const r = await call(base, 'GET', `/api/v1/projects/${projectId}/conversations/${id}/events?limit=1000&offset=${offset}`, { token }).catch(() => null);
          if (!r || r.status !== 200) break;
          for (const e of r.body.events) got.add(e.event_index);
          offset += r.body.events.length;
          if (!r.body.has_more || !r.body.events.length) break;
        }
        c.backfilled.set(id, got);
      }
    }
  });
  return c;
}
