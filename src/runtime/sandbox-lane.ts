/**
 * One sandbox, one Docker operation at a time. Docker 20.10 wedges a container when pause,
 * unpause and exec race on it (`docker rm -f` then hangs for good), and commands for one shared
 * sandbox arrive many at once (a burst of pause/resume/delete requests). So every container
 * operation a worker makes for a sandbox goes through that sandbox's lane, and the lifecycle
 * commands do not queue one Docker call each: they *coalesce*. A command that arrives while a
 * round runs joins the next round; that round re-reads the intent from Postgres once, converges
 * the container to it (unpause before remove, never exec into a frozen container) and answers
 * every command that joined it. However many commands arrive, a sandbox has at most one round
 * running and one waiting. The activations' own tool execs start on the lane too (laneDriver),
 * so a pause round never freezes the container while this worker is starting a process in it.
 */
import * as sandboxes from '../db/repositories/sandboxes.js';
import type { Logger } from '../log.js';
import { EXIT_ABORTED, type ExecResult, type SandboxDriver } from './sandbox/driver.js';

/** What a round left behind: the intent it read and what the container is now. */
export interface Converged {
  intent: 'active' | 'paused' | 'stopped' | 'gone';
  container: 'running' | 'paused' | 'removed' | 'none' | 'other';
}

interface Round {
  killRuns: Set<string>;
  promise: Promise<Converged>;
}

interface LaneState {
  tail: Promise<unknown>;
  /** The round that has not started yet: commands arriving now join it. */
  next?: Round;
  /** Items queued or running on this lane; the entry is dropped at zero. */
  pending: number;
}

const lanes = new Map<string, LaneState>();

/** Runs `fn` once every earlier operation on this sandbox's lane has settled. */
export function exclusive<T>(sandboxId: string, fn: () => Promise<T>): Promise<T> {
  let st = lanes.get(sandboxId);
  if (!st) lanes.set(sandboxId, (st = { tail: Promise.resolve(), pending: 0 }));
  const lane = st;
  lane.pending++;
  const run = lane.tail.then(fn);
  lane.tail = run.then(
    () => undefined,
    () => undefined,
  ).finally(() => {
    if (--lane.pending === 0 && lanes.get(sandboxId) === lane) lanes.delete(sandboxId);
  });
  return run;
}

/**
 * Asks for the sandbox's container to match its recorded intent. Joins the round that has not
 * started yet, if any (its `killRuns` are added to that round), else queues a new one.
 */
export function reconcile(driver: SandboxDriver, log: Logger, sandboxId: string, killRuns: string[] = []): Promise<Converged> {
  const waiting = lanes.get(sandboxId)?.next;
  if (waiting) {
    for (const r of killRuns) waiting.killRuns.add(r);
    return waiting.promise;
  }
  const round = { killRuns: new Set(killRuns) } as Round;
  round.promise = exclusive(sandboxId, () => {
    // Started: whoever comes now waits for the next round (it will see a newer intent).
    const st = lanes.get(sandboxId);
    if (st?.next === round) st.next = undefined;
    return converge(driver, log, sandboxId, [...round.killRuns]);
  });
  lanes.get(sandboxId)!.next = round;
  return round.promise;
}

/**
 * The driver an activation's tools (and its MCP servers and clone) use: every process they start
 * in the sandbox starts on its lane, so no pause round of this worker freezes the container while
 * Docker is starting one. Only the start is on the lane (until Docker reports the process
 * running), not the run: a long `sleep` must not hold up a resume or pause. Once on the lane the
 * start is re-checked: an aborted activation (`signal`) or a frozen container starts nothing.
 * Covers the execs of this worker process only (one per host): execs from other processes on the
 * same engine are not serialized with it.
 */
export function laneDriver(driver: SandboxDriver, sandboxId: string, signal: AbortSignal): SandboxDriver {
  /** Runs `start` on the lane once it is free, if it still may; the lane is let go once `started` settles. */
  const onLane = <T>(containerId: string, start: () => { result: Promise<T>; started: Promise<unknown> }): Promise<T | null> =>
    exclusive(sandboxId, async () => {
      if (signal.aborted) return null;
      if ((await driver.inspect(containerId))?.state === 'paused') throw new SandboxPaused();
      if (signal.aborted) return null;
      const { result, started } = start();
      await started.catch(() => {});
      return { result };
    }).then((r) => (r ? r.result : null));
  const notStarted = (stderr = ''): ExecResult => ({ exitCode: EXIT_ABORTED, stdout: '', stderr, timedOut: false, aborted: true });
  const overrides: Partial<SandboxDriver> = {
    async exec(containerId, opts) {
      const r = await onLane(containerId, () => {
        let started = () => {};
        const onStart = new Promise<void>((res) => (started = res));
        const result = driver.exec(containerId, { ...opts, onStart: () => { started(); opts.onStart?.(); } });
        return { result, started: Promise.race([onStart, result]) };
      }).catch((err: unknown) => {
        // Frozen by another session's pause: the command is reported as not run, not as a crash.
        if (err instanceof SandboxPaused) return notStarted(err.message);
        throw err;
      });
      return r ?? notStarted();
    },
    async execStream(containerId, opts) {
      const r = await onLane(containerId, () => {
        const result = driver.execStream(containerId, opts);
        return { result, started: result };
      });
      if (!r) throw new Error('the activation stood down');
      return r;
    },
    // Its `mkdir -p` is an exec too; the whole write is short.
    async writeFile(containerId, path, content) {
      const done = await onLane(containerId, () => {
        const result = driver.writeFile(containerId, path, content).then(() => true);
        return { result, started: result };
      });
      if (!done) throw new Error('the activation stood down');
    },
  };
  return new Proxy(driver, {
    get(target, prop, receiver) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof SandboxDriver];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

class SandboxPaused extends Error {
  constructor() {
    super('the sandbox is paused');
  }
}

/** Only for tests and metrics: how many sandboxes have lane work queued or running. */
export const busyLanes = () => lanes.size;

/**
 * One round: read the intent, look at the container, make the one or two Docker calls that bring
 * it there. Failures of a call are logged and reported in the result, never thrown, so every
 * waiter gets an answer.
 */
async function converge(driver: SandboxDriver, log: Logger, sandboxId: string, killRuns: string[]): Promise<Converged> {
  const sb = await sandboxes.byId(sandboxId);
  const intent: Converged['intent'] = sb ? sb.state : 'gone';
  const containerId = sb?.container_id ?? (await driver.find(sandboxId))?.id;
  if (!containerId) return { intent, container: 'none' };
  const info = await driver.inspect(containerId);
  if (!info) return { intent, container: 'none' };
  const step = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      log.warn({ err, sandbox: sandboxId, container: containerId }, `docker ${what} failed`);
      return false;
    }
  };
  const now = (): Converged['container'] => (info.state === 'paused' ? 'paused' : info.state === 'running' ? 'running' : 'other');
  switch (intent) {
    case 'stopped':
    case 'gone': {
      // A frozen container is woken before it is removed: `rm -f` on a paused one can wedge.
      if (info.state === 'paused') await step('unpause', () => driver.unpause(containerId));
      return { intent, container: (await step('remove', () => driver.remove(containerId))) ? 'removed' : now() };
    }
    case 'paused': {
      if (info.state !== 'running') return { intent, container: now() };
      return { intent, container: (await step('pause', () => driver.pause(containerId))) ? 'paused' : 'running' };
    }
    case 'active': {
      if (info.state === 'paused' && !(await step('unpause', () => driver.unpause(containerId)))) return { intent, container: 'paused' };
      if (info.state !== 'paused' && info.state !== 'running') return { intent, container: now() };
      // Tool runs frozen mid-call are ended now that the container is awake (never exec into a
      // frozen one): the next activation may start them again under the same run id.
      await Promise.all(killRuns.map((runId) => driver.kill(containerId, runId).catch(() => {})));
      return { intent, container: 'running' };
    }
  }
}

/**
 * Waits for `p` at most until `deadline` (epoch ms); after that resolves with `fallback()` so the
 * caller answers in time. The round itself carries on and converges the container later.
 */
export async function until<T>(p: Promise<T>, deadline: number, fallback: () => T): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) return fallback();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
