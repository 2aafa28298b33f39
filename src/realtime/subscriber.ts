/**
 * One Redis subscriber connection per api process, shared by all its streaming clients.
 * Channels are subscribed while at least one local listener wants them (reference counted), so
 * a process only receives traffic for the sessions and projects its own clients watch.
 */
import type { Redis } from 'ioredis';
import { createRedis } from '../lib/redis.js';
import type { BusMessage } from './bus.js';

/** A bus listener gets the parsed message (parsed once per message, however many listen). */
type Entry = { kind: 'bus'; fn: (msg: BusMessage) => void } | { kind: 'raw'; fn: (raw: string) => void };

let sub: Redis | undefined;
/** `list` is `entries` as an array, rebuilt when they change rather than copied per message. */
const channels = new Map<string, { entries: Set<Entry>; list: Entry[]; subscribed: Promise<unknown> }>();
const reconnectHandlers = new Set<() => void>();

/** Called after the subscriber reconnects to Redis; returns an unregister function. */
export function onReconnect(fn: () => void): () => void {
  reconnectHandlers.add(fn);
  return () => reconnectHandlers.delete(fn);
}

function connection(): Redis {
  if (sub) return sub;
  sub = createRedis({ name: 'troupe-subscriber' });
  sub.on('message', (channel: string, raw: string) => {
    const entries = channels.get(channel)?.list;
    if (!entries?.length) return;
    let msg: BusMessage | null | undefined;
    // A listener may remove itself (or others) while this runs: `entries` is not changed in place.
    for (const e of entries) {
      try {
        if (e.kind === 'raw') e.fn(raw);
        else {
          if (msg === undefined) msg = parse(raw);
          if (msg) e.fn(msg);
        }
      } catch {
        /* one client's failure must not starve the others */
      }
    }
  });
  // ioredis re-subscribes after a reconnect by itself (autoResubscribe), but whatever was
  // published while it was away is gone: tell listeners to catch up from the durable log.
  let readyOnce = false;
  sub.on('ready', () => {
    if (readyOnce) for (const fn of [...reconnectHandlers]) fn();
    readyOnce = true;
  });
  return sub;
}

function parse(raw: string): BusMessage | null {
  try {
    return JSON.parse(raw) as BusMessage;
  } catch {
    return null;
  }
}

/** Resolves once Redis has confirmed the subscription, so nothing published after is missed. */
async function add(channel: string, entry: Entry): Promise<() => void> {
  let ch = channels.get(channel);
  if (!ch) channels.set(channel, (ch = { entries: new Set(), list: [], subscribed: connection().subscribe(channel) }));
  ch.entries.add(entry);
  ch.list = [...ch.entries];
  await ch.subscribed;
  const mine = ch;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    mine.entries.delete(entry);
    mine.list = [...mine.entries];
    if (mine.entries.size === 0 && channels.get(channel) === mine) {
      channels.delete(channel);
      void sub?.unsubscribe(channel).catch(() => {});
    }
  };
}

export function listen(channel: string, fn: (msg: BusMessage) => void): Promise<() => void> {
  return add(channel, { kind: 'bus', fn });
}

/** Like listen(), for channels whose messages are not bus messages (agent hub, debug). */
export function listenRaw(channel: string, fn: (raw: string) => void): Promise<() => void> {
  return add(channel, { kind: 'raw', fn });
}

export async function closeSubscriber(): Promise<void> {
  channels.clear();
  if (sub) await sub.quit().catch(() => sub?.disconnect());
  sub = undefined;
}
