/**
 * Housekeeping that no single request owns, run by every worker process (all steps are safe to
 * run concurrently, being compare-and-set or idempotent):
 *  - idle sessions past TROUPE_IDLE_TIMEOUT_SECONDS are paused (container frozen);
 *  - sandboxes older than their own `timeout` are deleted through the sandbox service (their
 *    sessions stopped with the reason, their container removed by the usual command);
 *  - containers of this runtime instance whose sandbox is gone, stopped, or whose owning session
 *    is terminal are removed;
 *  - sessions left queued with no job (an api crash between commit and enqueue) are re-enqueued;
 *  - sessions whose event-pipeline listeners fell behind (a lost or exhausted job) are re-queued.
 */
import { config } from '../config.js';
import type { Logger } from '../log.js';
import { pauseSession } from '../services/sessions.js';
import { deleteSandbox } from '../services/sandbox-lifecycle.js';
import * as sandboxRows from '../db/repositories/sandboxes.js';
import { enqueueActivation } from './queue.js';
import { creationsAbandoned, idleLongerThan, queuedWithoutProgress, writeSession } from '../db/session-store.js';
import { isTerminal } from '../domain/sessions.js';
import { pruneAgentEvents } from '../services/hub.js';
import { sandboxDriver } from './sandbox/index.js';
import { isUuid } from '../services/access.js';
import { POOL_NAME_PREFIX, sandboxIdOf, type SandboxDriver } from './sandbox/driver.js';

export interface ReaperDeps {
  /** The worker's driver (the process default when a test runs the reaper alone). */
  driver?: SandboxDriver;
  /** Re-queues sessions whose event-pipeline listeners fell behind. */
  sweepPipeline?: () => Promise<unknown>;
}

export function startReaper(log: Logger, deps: ReaperDeps = {}): { stop(): void; sweep(opts?: { idleTimeoutSeconds?: number }): Promise<void> } {
  const driver = deps.driver ?? sandboxDriver();
  let running = false;
  const sweep = async (opts: { idleTimeoutSeconds?: number } = {}) => {
    if (running) return;
    running = true;
    try {
      await pauseIdle(log, opts.idleTimeoutSeconds ?? config.idleTimeoutSeconds);
      await expireSandboxes(log);
      await removeOrphans(log, { driver });
      await requeueStranded();
      await deps.sweepPipeline?.();
      await pruneAgentEvents(config.updatesRetentionHours);
    } catch (err) {
      log.warn({ err }, 'reaper sweep failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), config.reaperIntervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), sweep };
}

async function pauseIdle(log: Logger, idleTimeoutSeconds: number) {
  for (const s of await idleLongerThan(idleTimeoutSeconds, 500)) {
    await pauseSession(s, `idle for ${idleTimeoutSeconds}s`).then(
      () => log.info({ session: s.id }, 'paused idle session'),
      (err) => log.debug({ err, session: s.id }, 'idle pause skipped'), // usually: someone changed it first
    );
  }
}

/** A sandbox's `timeout` (seconds from creation) is its lifetime: past it, it goes the way DELETE would. */
async function expireSandboxes(log: Logger) {
  for (const sb of await sandboxRows.pastTimeout(100)) {
    await deleteSandbox(sb, `sandbox timeout (${sb.timeout_seconds}s) reached`).then(
      () => log.info({ sandbox: sb.id, timeout: sb.timeout_seconds }, 'sandbox timeout reached: deleted'),
      (err) => log.warn({ err, sandbox: sb.id }, 'sandbox timeout: delete failed (retried next sweep)'),
    );
  }
}

export async function removeOrphans(log: Logger, opts: { driver?: SandboxDriver; poolMaxAgeSeconds?: number } = {}) {
  const driver = opts.driver ?? sandboxDriver();
  const all = await driver.list({ instance: config.instance });
  // Unclaimed warm-pool containers belong to a live worker's pool unless they outlived the age at
  // which their owner would have replaced them (then the owner is gone).
  const poolLimit = Date.now() - 2 * (opts.poolMaxAgeSeconds ?? config.poolMaxAgeSeconds) * 1000;
  for (const c of all.filter((x) => !sandboxIdOf(x) && x.name.startsWith(POOL_NAME_PREFIX))) {
    // A pool container that exited (the engine restarted under it, or it was killed) can never be
    // handed out: it goes at once, whatever its age.
    if (c.state === 'exited' || c.state === 'dead' || (c.createdAt ?? Date.now()) < poolLimit) {
      await driver.remove(c.id).catch(() => {});
      log.info({ container: c.id }, 'removed abandoned warm-pool container');
    }
  }
  const containers = all.filter((c) => !c.name.startsWith(POOL_NAME_PREFIX));
  if (!containers.length) return;
  const ids = containers.map(sandboxIdOf).filter((id): id is string => !!id && isUuid(id));
  const byId = new Map((await sandboxRows.withOwnerStatus(ids)).map((r) => [r.id, r]));
  for (const c of containers) {
    const sb = byId.get(sandboxIdOf(c) ?? '');
    const dead = !sb || sb.state === 'stopped' || (sb.owner_session_id && (!sb.session_status || isTerminal(sb.session_status)));
    if (dead) {
      await driver.remove(c.id).catch(() => {});
      if (sb) await sandboxRows.setState(sb.id, 'stopped');
      log.info({ container: c.id, sandbox: sandboxIdOf(c) }, 'removed orphaned container');
    }
  }
}

async function requeueStranded() {
  // Only sessions whose creation finished (first events written): a half-created one waits for
  // its client's retry (Idempotency-Key) to finish it, and is failed if none comes.
  for (const s of await queuedWithoutProgress(30, 100)) await enqueueActivation(s.id, s.activation);
  for (const s of await creationsAbandoned(600, 100)) {
    await writeSession(s.id, [], { from: ['queued'], expectNextIndex: 0, to: 'failed', reason: 'creation was interrupted and never retried' });
  }
}
