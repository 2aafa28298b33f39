/**
 * The per-session SSE stream (seed 002). Durable events carry `id: <event_index>`; a client that
 * reconnects with Last-Event-ID gets exactly the durable events it missed, then the live stream.
 *
 * No gap, no duplicate: subscribe first (holding live messages back), read the log after the
 * client's last id, replay the in-progress message's buffered deltas, then release the held
 * messages, skipping what was already sent. A live event that arrives ahead of its predecessor
 * (two writers publishing out of order) makes us read the missing ones from the log first.
 */
import type { SseWriter } from './sse-writer.js';
import { loadEvents, type EventRow } from '../db/session-store.js';
import { bufferedDeltas, sessionChannel, type BusMessage, type LiveMessage } from './bus.js';
import { listen, onReconnect } from './subscriber.js';

export const KEEPALIVE_MS = 15_000;
const TERMINAL = ['completed', 'failed', 'stopped'];

/** SSE event name of a durable event. `user_message` and `session_error` are added so that every durable event has a name and an id. */
export function sseName(e: EventRow): string {
  if (e.event_type === 'message') return e.event_source === 'user' ? 'user_message' : 'text_complete';
  if (e.event_type === 'tool_use') return 'tool_use_complete';
  if (e.event_type === 'error') return 'session_error'; // "error" would collide with EventSource's own error event
  return e.event_type; // tool_result, status
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

export async function streamSession(sse: SseWriter, sessionId: string, afterIndex: number): Promise<void> {
  let sent = afterIndex;
  let held: BusMessage[] | null = [];
  const seen = new Set<string>();
  let ended = false;
  let chain = Promise.resolve();

  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepalive);
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
    const status = (e.payload as { status?: string }).status;
    if (e.event_type === 'status' && status && TERMINAL.includes(status)) {
      if (status === 'completed') push({ session_id: sessionId, event_index: e.event_index }, 'session_completed');
      if (status === 'failed') push({ session_id: sessionId, event_index: e.event_index, error: (e.payload as { reason?: string }).reason }, 'session_failed');
      end();
    }
  };
  const emitLive = (m: LiveMessage) => {
    const key = `${m.activation}:${m.seq}`;
    if (seen.has(key)) return;
    seen.add(key);
    push(liveData(m), m.type);
  };
  const handle = async (m: BusMessage) => {
    if (ended) return;
    if (m.type === 'dashboard') return;
    if (m.type !== 'event') return emitLive(m);
    if (m.event.event_index > sent + 1) for (const e of await loadEvents(sessionId, { after: sent })) emitDurable(e);
    emitDurable(m.event);
  };

  const unlisten = await listen(sessionChannel(sessionId), (m) => {
    if (held) held.push(m);
    else chain = chain.then(() => handle(m)).catch(() => {});
  });
  // Pub/sub drops what is published while Redis is away: after a reconnect, and at every
  // keepalive as a backstop, read the log for durable events this stream has not sent.
  const catchUp = () => {
    if (held || ended) return;
    chain = chain.then(async () => {
      for (const e of await loadEvents(sessionId, { after: sent })) emitDurable(e);
    }).catch(() => {});
  };
  const stopResync = onReconnect(catchUp);
  const keepalive = setInterval(() => {
    push({ time: new Date().toISOString() }, 'keepalive');
    catchUp();
  }, KEEPALIVE_MS);
  sse.onClose(end);

  for (const e of await loadEvents(sessionId, { after: afterIndex })) emitDurable(e);
  if (!ended) for (const d of await bufferedDeltas(sessionId)) if (d.type !== 'event' && d.type !== 'dashboard') emitLive(d);
  const backlog = held;
  held = null;
  chain = chain.then(async () => {
    for (const m of backlog) await handle(m);
  }).catch(() => {});
}
