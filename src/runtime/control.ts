/**
 * Worker-to-worker signals about live activations, over Redis pub/sub:
 * - abort: "whoever drives session S, stand down" (pause, stop, interrupt), sent by the worker
 *   that took the api's command, heard by the worker process whose activation it is;
 * - released: "activation N of session S touches its container no more", announced by the actor
 *   as it stands down, awaited by a command that must not freeze a container mid-exec.
 * Both are hints on top of fencing (every write carries the activation), so a lost message costs
 * at most the bounded wait, never correctness.
 */
import { createRedis, key, redis } from '../lib/redis.js';
import type { Logger } from '../log.js';

export type AbortReason = 'pause' | 'stop' | 'interrupt' | 'fence' | 'shutdown';

const abortChannel = () => key('control');
const releasedChannel = () => key('released');
const releasedKey = (sessionId: string) => key('released', sessionId);

export async function broadcastAbort(sessionId: string, reason: AbortReason): Promise<void> {
  await redis().publish(abortChannel(), JSON.stringify({ session_id: sessionId, action: reason }));
}

/** Called by the actor when an activation has stood down (kept 5 minutes for late askers). */
export async function announceReleased(sessionId: string, activation: number): Promise<void> {
  await redis().multi()
    .set(releasedKey(sessionId), String(activation), 'EX', 300)
    .publish(releasedChannel(), JSON.stringify({ session_id: sessionId, activation }))
    .exec();
}

/** One subscriber per worker process: aborts its live activations, wakes release waiters. */
export class ControlListener {
  private readonly sub = createRedis({ name: 'troupe-control' });
  private readonly waiters = new Map<string, Set<{ activation: number; done: () => void }>>();

  constructor(private readonly live: Map<string, AbortController>, private readonly log: Logger) {}

  async start(): Promise<void> {
    await this.sub.subscribe(abortChannel(), releasedChannel());
    this.sub.on('message', (channel: string, raw: string) => {
      try {
        const msg = JSON.parse(raw) as { session_id: string; action?: AbortReason; activation?: number };
        if (channel === abortChannel()) this.live.get(msg.session_id)?.abort(msg.action);
        else this.wake(msg.session_id, Number(msg.activation));
      } catch (err) {
        this.log.debug({ err }, 'malformed control message ignored');
      }
    });
  }

  /** Resolves once `activation` (or a later one) of the session has stood down, or after timeoutMs. */
  async waitReleased(sessionId: string, activation: number, timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let entry: { activation: number; done: () => void } | undefined;
    const heard = new Promise<boolean>((resolve) => {
      entry = { activation, done: () => resolve(true) };
      const set = this.waiters.get(sessionId) ?? new Set();
      set.add(entry);
      this.waiters.set(sessionId, set);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      // Subscribed before reading, so a release between the two is not missed.
      const v = await redis().get(releasedKey(sessionId));
      if (v !== null && Number(v) >= activation) return true;
      return await heard;
    } finally {
      clearTimeout(timer);
      const set = this.waiters.get(sessionId);
      set?.delete(entry!);
      if (set && !set.size) this.waiters.delete(sessionId);
    }
  }

  private wake(sessionId: string, activation: number): void {
    for (const w of this.waiters.get(sessionId) ?? []) if (activation >= w.activation) w.done();
  }

  async close(): Promise<void> {
    await this.sub.quit().catch(() => this.sub.disconnect());
  }
}
