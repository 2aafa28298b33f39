/**
 * One Redis subscriber connection per api process, shared by all its streaming clients.
 * Channels are subscribed while at least one local listener wants them (reference counted), so
 * a process only receives traffic for the sessions and projects its own clients watch.
 */
import type { Redis } from 'ioredis';
import { createRedis } from '../lib/redis.js';
import type { BusMessage } from './bus.js';

type Listener = (msg: BusMessage) => void;
type RawListener = (raw: string) => void;

let sub: Redis | undefined;
const listeners = new Map<string, Set<Listener>>();
const rawListeners = new Map<string, Set<RawListener>>();
const subscribed = new Map<string, Promise<unknown>>();
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
    for (const l of [...(rawListeners.get(channel) ?? [])]) {
      try {
        l(raw);
      } catch {
        /* isolate clients */
      }
    }
    const set = listeners.get(channel);
    if (!set?.size) return;
    let msg: BusMessage;
    try {
      msg = JSON.parse(raw) as BusMessage;
    } catch {
      return;
    }
    for (const l of [...set]) {
      try {
        l(msg);
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

/** Resolves once Redis has confirmed the subscription, so nothing published after is missed. */
export async function listen(channel: string, listener: Listener): Promise<() => void> {
  let set = listeners.get(channel);
  const first = !set;
  if (!set) listeners.set(channel, (set = new Set()));
  set.add(listener);
  if (first && !subscribed.has(channel)) subscribed.set(channel, connection().subscribe(channel));
  await subscribed.get(channel);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    set!.delete(listener);
    if (set!.size === 0 && listeners.get(channel) === set && !rawListeners.get(channel)?.size) {
      listeners.delete(channel);
      subscribed.delete(channel);
      void sub?.unsubscribe(channel).catch(() => {});
    }
  };
}

/** Like listen(), for channels whose messages are not bus messages (agent hub, debug). */
export async function listenRaw(channel: string, listener: RawListener): Promise<() => void> {
  let set = rawListeners.get(channel);
  if (!set) rawListeners.set(channel, (set = new Set()));
  set.add(listener);
  if (!subscribed.has(channel)) subscribed.set(channel, connection().subscribe(channel));
  await subscribed.get(channel);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    set!.delete(listener);
    if (set!.size === 0 && !listeners.get(channel)?.size) {
      rawListeners.delete(channel);
      subscribed.delete(channel);
      void sub?.unsubscribe(channel).catch(() => {});
    }
  };
}

export async function closeSubscriber(): Promise<void> {
  listeners.clear();
  rawListeners.clear();
  subscribed.clear();
  if (sub) await sub.quit().catch(() => sub?.disconnect());
  sub = undefined;
}
