/**
 * This worker process as a host of the cluster (issue 13): it registers its engine and capacity
 * in Postgres and heartbeats while its engine answers; every host also runs the cluster's sweep
 * (each step a compare-and-set, so any number may run it at once):
 *  - hosts silent for TROUPE_HOST_DEAD_SECONDS are declared dead and their queues emptied;
 *  - sessions that were running or queued on a dead host's sandboxes are fenced off (activation
 *    bumped) and queued again: their sandbox gets a host with room and a fresh container, and
 *    containers.ts writes the durable `sandbox_replaced` event; idle and paused ones get theirs
 *    when they next run;
 *  - sessions waiting for a host with room are started once there is room, or failed after
 *    TROUPE_HOST_WAIT_SECONDS.
 * A host that finds itself declared dead (or starts after being) removes the containers of
 * sandboxes that were given to other hosts instead of running them. Drain (SIGTERM or the admin
 * route) takes no new placements, lets running turns finish, moves idle and paused sandboxes with
 * their /workspace to other hosts (tar through the two engines' archive APIs), then lets go.
 */
import { config } from '../config.js';
import * as hosts from '../db/repositories/hosts.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import { writeSession } from '../db/session-store.js';
import { hostRecoveries, hostSandboxMoves } from '../lib/metrics.js';
import type { Logger } from '../log.js';
import { isUuid } from '../services/access.js';
import { enqueueActivation, obliterateHostQueues, sessionQueue } from './queue.js';
import { specFor } from './sandbox/containers.js';
import { sandboxIdOf, type SandboxDriver } from './sandbox/driver.js';
import { driverForEngine } from './sandbox/index.js';

export interface HostDeps {
  driver: SandboxDriver;
  log: Logger;
  /** Called once an admin-requested drain is done (the worker entry exits). */
  onDrained?: () => void;
}

export interface HostHandle {
  hostId: string;
  /** Drains this host (see above); `onlyIfOthers`: do nothing unless another live host exists (SIGTERM). */
  drain(opts?: { onlyIfOthers?: boolean }): Promise<void>;
  /** One pass of the cluster sweep now (tests). */
  sweep(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startHost(deps: HostDeps): Promise<HostHandle> {
  const { driver, log } = deps;
  const hostId = config.hostId;
  const me = { id: hostId, engine: config.hostEngine, capacity: config.hostMaxSandboxes };
  const beatMs = Math.max(500, Math.min(5000, Math.floor((config.hostDeadSeconds * 1000) / 5)));
  let draining: Promise<void> | null = null;
  let engineDown = false;
  let beats = 0;
  let stopped = false;

  /** Removes containers on this engine whose sandbox now lives on another host (`strict`: or on none). */
  const removeStale = async (strict: boolean) => {
    for (const c of await driver.list({ instance: config.instance })) {
      const id = sandboxIdOf(c);
      if (!id || !isUuid(id)) continue;
      const row = await sandboxes.byId(id);
      if (!row || row.host_id === hostId || (!strict && row.host_id === null)) continue;
      await driver.remove(c.id).catch((err) => log.warn({ err, container: c.id }, 'could not remove a stale container'));
      log.info({ container: c.id, sandbox: id, now_on: row.host_id }, 'removed a stale container (its sandbox moved while this host was dead)');
    }
  };

  const engineOk = await driver.ping();
  const previous = await hosts.register(me, engineOk);
  if (engineOk) await removeStale(previous === 'dead').catch((err) => log.warn({ err }, 'could not look for stale containers'));
  log.info({ host: hostId, engine: me.engine, capacity: me.capacity, previous }, 'host registered');

  const recoverLost = async () => {
    for (const sb of await hosts.sandboxesOnDeadHosts(200)) {
      const requeue: Array<{ id: string; activation: number }> = [];
      for (const s of await hosts.sessionsOfSandbox(sb.id)) {
        if (s.status !== 'running' && s.status !== 'queued') continue;
        const res = await writeSession(s.id, [], {
          from: ['running', 'queued'], to: 'queued', bumpActivation: true, reason: `worker host ${sb.host_id} was lost: recovering on another host`,
        });
        if (res) requeue.push({ id: s.id, activation: res.session.activation });
      }
      if (!(await hosts.unplace(sb.id, sb.host_id))) continue;
      for (const s of requeue) {
        await enqueueActivation(s.id, s.activation);
        hostRecoveries.inc({ host: sb.host_id });
      }
      log.info({ sandbox: sb.id, lost_host: sb.host_id, sessions: requeue.length }, 'recovered a sandbox of a dead host');
    }
  };

  const startWaiting = async () => {
    for (const w of await hosts.waitingSessions(100)) {
      if (w.waited_seconds > config.hostWaitSeconds) {
        const reason = `no worker host had room for ${config.hostWaitSeconds}s (TROUPE_HOST_WAIT_SECONDS)`;
        await writeSession(w.id, [{ event_type: 'error', event_source: 'system', payload: { message: reason } }], { from: ['queued'], activation: w.activation, to: 'failed', reason });
        continue;
      }
      const target = await hosts.place(w.sandbox_id, config.hostDeadSeconds);
      if (!target) break; // still no room
      await sessionQueue(target).add('activate', { sessionId: w.id }, { jobId: `${w.id}_${w.activation}` });
    }
  };

  const sweep = async () => {
    for (const dead of await hosts.claimDead(config.hostDeadSeconds, hostId)) {
      log.warn({ host: dead }, `host declared dead (no heartbeat for ${config.hostDeadSeconds}s)`);
      await obliterateHostQueues(dead).catch((err) => log.warn({ err, host: dead }, 'could not empty a dead host\'s queues'));
    }
    await recoverLost();
    await startWaiting();
  };

  // The heartbeat and the sweep run apart, so a long sweep never delays a beat (a host that
  // misses beats is declared dead).
  const beatOnce = async () => {
    // An engine that does not answer stops the heartbeat: past TROUPE_HOST_DEAD_SECONDS the
    // host's sessions are recovered elsewhere, as for a dead host.
    if (!(await driver.ping())) {
      engineDown = true;
      return;
    }
    // After an outage, and now and then anyway (a restart quicker than a beat goes unseen):
    // pooled containers that died with the engine are dropped and the pool refilled.
    if (engineDown || ++beats % 6 === 0) {
      if (engineDown) log.warn({ host: hostId }, 'the Docker engine answers again: refilling the warm pool');
      engineDown = false;
      void driver.refreshWarmPool?.().catch((err) => log.warn({ err }, 'could not refill the warm pool'));
    }
    const state = await hosts.beat(hostId);
    if (state === null) {
      log.warn({ host: hostId }, 'this host was declared dead: removing its stale containers and registering again');
      await removeStale(true);
      await hosts.register(me);
    } else if (state === 'draining' && !draining) {
      void drain().then(() => deps.onDrained?.());
    }
  };
  const every = (what: string, fn: () => Promise<void>) => {
    let busy = false;
    const t = setInterval(() => {
      if (busy || stopped) return;
      busy = true;
      void fn().catch((err) => log.warn({ err }, `host ${what} failed`)).finally(() => (busy = false));
    }, beatMs);
    t.unref();
    return t;
  };
  const timers = [every('heartbeat', beatOnce), every('sweep', sweep)];

  /** Moves one quiet sandbox to another host with its /workspace; false when it cannot move yet. */
  const move = async (sbId: string): Promise<boolean> => {
    const sessions = await hosts.sessionsOfSandbox(sbId);
    if (sessions.some((s) => s.status === 'running' || s.status === 'queued')) return false; // running turns finish first
    const row = await sandboxes.byId(sbId);
    if (!row || row.host_id !== hostId) return true;
    const target = await hosts.place(sbId, config.hostDeadSeconds, { exclude: hostId });
    const targetRow = target ? await hosts.byId(target) : undefined;
    if (!target || !targetRow) return false;
    const src = await driver.find(sbId);
    if (!src) return hosts.moveIfQuiet(sbId, hostId, target, null);
    const there = driverForEngine(targetRow.engine);
    if (src.state === 'paused') await driver.unpause(src.id);
    const made = await there.ensure(specFor(row));
    try {
      await there.putArchive(made.id, '/', await driver.getArchive(src.id, '/workspace'));
      if (row.state === 'paused') await there.pause(made.id);
      if (!(await hosts.moveIfQuiet(sbId, hostId, target, made.id))) throw new Error('a session became busy while its files were copied');
    } catch (err) {
      await there.remove(made.id).catch(() => {});
      if (row.state === 'paused') await driver.pause(src.id).catch(() => {});
      throw err;
    }
    await driver.remove(src.id).catch((err) => log.warn({ err, container: src.id }, 'moved, but the old container could not be removed'));
    hostSandboxMoves.inc({ from: hostId, to: target });
    log.info({ sandbox: sbId, to: target }, 'moved a sandbox with its /workspace');
    return true;
  };

  const otherLiveHosts = async () => (await hosts.list()).filter((h) => h.id !== hostId && h.state === 'live' && h.heartbeat_age_seconds < config.hostDeadSeconds);

  const drain = (opts: { onlyIfOthers?: boolean } = {}): Promise<void> => {
    draining ??= (async () => {
      if (opts.onlyIfOthers) {
        if (!(await otherLiveHosts()).length) {
          draining = null;
          return;
        }
      }
      await hosts.setState(hostId, 'draining', ['live']);
      log.info({ host: hostId }, 'draining: no new placements; running turns finish, idle and paused sandboxes move');
      const deadline = Date.now() + config.hostDrainSeconds * 1000;
      for (;;) {
        const left = await hosts.sandboxesOf(hostId);
        if (!left.length) break;
        if (!(await otherLiveHosts()).length) {
          log.warn({ host: hostId, left: left.length }, 'drain: no other live host to move to; leaving the rest to recovery');
          break;
        }
        for (const sb of left) await move(sb.id).catch((err) => log.warn({ err, sandbox: sb.id }, 'could not move a sandbox yet'));
        if (Date.now() > deadline) {
          log.warn({ host: hostId, left: left.length }, 'drain timed out: leaving the rest to recovery');
          break;
        }
        await sleep(500);
      }
      log.info({ host: hostId }, 'drained');
    })();
    return draining;
  };

  return {
    hostId,
    drain,
    sweep,
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
    },
  };
}
