/**
 * The per-session SSE stream (seed 002). Durable events carry `id: <event_index>`; a client that
 * reconnects with Last-Event-ID gets exactly the durable events it missed, then the live stream.
 *
 * No gap, no duplicate: subscribe first (holding live messages back), read the log after the
 * client's last id, replay the in-progress message's buffered deltas, then release the held
 * messages, skipping what was already sent. A live event that arrives ahead of its predecessor
 * (two writers publishing out of order) makes us read the missing ones from the log first.
 */
import { SseWriter } from './sse-writer.js';
import { loadEvents, TERMINAL, type EventRow, type SessionStatus } from '../db/session-store.js';
import { bufferedDeltas, sessionChannel, type BusMessage, type LiveMessage } from './bus.js';
import { listen, onReconnect } from './subscriber.js';

export const KEEPALIVE_MS = 15_000;

/** SSE event name of a durable event. `user_message` and `session_error` are added so that every durable event has a name and an id. */
export function sseName(e: EventRow): string {
  if (e.event_type === 'message') return e.event_source === 'user' ? 'user_message' : 'text_complete';
  if (e.event_type === 'tool_use') return 'tool_use_complete';
  if (e.event_type === 'error') return 'session_error'; // "error" would collide with EventSource's own error event
  return e.event_type; // tool_result, status, pr_created
}

export function durableData(e: EventRow): Record<string, unknown> {
  const base = {
    id: e.id, session_id: e.session_id, event_index: e.event_index, event_type: e.event_type,
    event_source: e.event_source, payload: e.payload, created_at: e.created_at,
  };
  if (e.event_type === 'message' && e.event_source !== 'user') return { ...base, text: (e.payload as { message?: string }).message ?? '' };
  return base;
}

export function liveData(m: LiveMessage): Record<string, unknown> {
  const { type: _t, project_id: _p, ...rest } = m;
  return rest;
}

/**
 * A live message's dedup key and SSE frame, made once per message: the subscriber parses each
 * Redis message once and hands the same object to every stream of the session.
 */
const FRAME = Symbol('sse frame');
type Framed = LiveMessage & { [FRAME]?: { key: string; frame: Buffer } };
function liveFrame(m: Framed): { key: string; frame: Buffer } {
  let f = m[FRAME];
  if (!f) {
    f = { key: `${m.activation}:${m.seq}`, frame: Buffer.from(SseWriter.frame(m.type, liveData(m))) };
    // Not enumerable: other listeners of the same message copy its fields.
    Object.defineProperty(m, FRAME, { value: f });
  }
  return f;
}

/** Durable events read per query when replaying a log: a long log is never loaded whole. */
export const REPLAY_PAGE = 500;

/**
 * Every durable event after `after`, in order, read a page at a time; between pages it waits
 * until the client has taken what was written (so a slow client does not make us buffer the log).
 */
async function replayAfter(sse: SseWriter, sessionId: string, after: number, emit: (e: EventRow) => void, ended: () => boolean): Promise<void> {
  let cursor = after;
  for (;;) {
    const page = await loadEvents(sessionId, { after: cursor, limit: REPLAY_PAGE });
    for (const e of page) emit(e);
    if (page.length < REPLAY_PAGE || ended()) return;
    cursor = page[page.length - 1].event_index;
    await sse.drained();
  }
}

export async function streamSession(sse: SseWriter, sessionId: string, afterIndex: number): Promise<void> {
  let sent = afterIndex;
  let held: BusMessage[] | null = [];
  const seen = new Set<string>();
  let ended = false;
  // Work that must wait (reading the log) is chained, and everything after it waits its turn;
  // with nothing pending, a message is sent at once, in the subscriber's own callback.
  let chain = Promise.resolve();
  let pending = 0;
  const enqueue = (step: () => Promise<void>) => {
    pending++;
    chain = chain.then(step).catch(() => {}).finally(() => {
      pending--;
    });
  };

  const end = () => {
    if (ended) return;
    ended = true;
    clearTimeout(keepalive);
    stopResync();
    unlisten();
    sse.end();
  };
  const push = (data: unknown, name: string, id?: string) => {
    if (ended) return;
    sse.send(name, data, id);
  };
  const emitDurable = (e: EventRow) => {
    if (e.event_index <= sent) return;
    push(durableData(e), sseName(e), String(e.event_index));
    sent = e.event_index;
    if (e.event_type === 'message' || e.event_type === 'tool_result') seen.clear();
    const status = (e.payload as { status?: SessionStatus }).status;
    if (e.event_type === 'status' && status && TERMINAL.includes(status)) {
      if (status === 'completed') push({ session_id: sessionId, event_index: e.event_index }, 'session_completed');
      if (status === 'failed') push({ session_id: sessionId, event_index: e.event_index, error: (e.payload as { reason?: string }).reason }, 'session_failed');
      end();
    }
  };
  const emitLive = (m: LiveMessage) => {
    const { key, frame } = liveFrame(m);
    if (seen.has(key)) return;
    seen.add(key);
    if (!ended) sse.sendFrame(frame);
  };
  /** Handles `m` if that needs nothing from the log; false if it has to wait for it. */
  const handleNow = (m: BusMessage): boolean => {
    if (ended || m.type === 'dashboard') return true;
    if (m.type !== 'event') {
      emitLive(m);
      return true;
    }
    if (m.event.event_index > sent + 1) return false;
    emitDurable(m.event);
    return true;
  };
  const handle = async (m: BusMessage) => {
    if (handleNow(m)) return;
    // A durable event arrived ahead of its predecessors: read them from the log first.
    await replayAfter(sse, sessionId, sent, emitDurable, () => ended);
    emitDurable((m as Extract<BusMessage, { type: 'event' }>).event);
  };

  const unlisten = await listen(sessionChannel(sessionId), (m) => {
    if (held) held.push(m);
    else if (pending > 0 || !handleNow(m)) enqueue(() => handle(m));
  });
  // Pub/sub drops what is published while Redis is away: after a reconnect, and at every
  // keepalive as a backstop, read the log for durable events this stream has not sent.
  const catchUp = () => {
    if (held || ended) return;
    enqueue(() => replayAfter(sse, sessionId, sent, emitDurable, () => ended));
  };
  const stopResync = onReconnect(catchUp);
  const tick = () => {
    push({ time: new Date().toISOString() }, 'keepalive');
    catchUp();
  };
  // Streams opened together (a dashboard reloading, a deploy) would otherwise all read the log in
  // the same instant every period: the first keepalive comes at a random point of the second
  // half of the period, then every KEEPALIVE_MS.
  let keepalive: NodeJS.Timeout = setTimeout(() => {
    tick();
    if (!ended) keepalive = setInterval(tick, KEEPALIVE_MS);
  }, Math.round(KEEPALIVE_MS * (0.5 + Math.random() / 2)));
  sse.onClose(end);

  await replayAfter(sse, sessionId, afterIndex, emitDurable, () => ended);
  if (!ended) for (const d of await bufferedDeltas(sessionId)) if (d.type !== 'event' && d.type !== 'dashboard') emitLive(d);
  const backlog = held;
  held = null;
  enqueue(async () => {
    for (const m of backlog) await handle(m);
  });
}
