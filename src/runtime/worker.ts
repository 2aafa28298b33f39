/**
 * A worker process: the BullMQ worker that runs activations, the command worker that acts on
 * containers for the api, the control listener that aborts activations on pause/stop/interrupt,
 * and the reaper. It is the only kind of process that touches a container. `startSessionWorker`
 * returns a handle whose close() hands live sessions back to the queue before leaving.
 */
import crypto from 'node:crypto';
import { Worker } from 'bullmq';
import { config } from '../config.js';
import { startHeartbeat } from '../lib/heartbeat.js';
import { createRedis } from '../lib/redis.js';
import { log as rootLog } from '../log.js';
import { eventPipeline, installDefaultPorts } from '../wiring.js';
import { runActivation } from './actor.js';
import { startCommandWorker } from './command-handler.js';
import { ControlListener } from './control.js';
import { enqueueActivation, sessionQueue, sessionQueueName } from './queue.js';
import * as hosts from '../db/repositories/hosts.js';
import { startHost, type HostHandle } from './host.js';
import { getSession, writeSession } from '../db/session-store.js';
import { startReaper } from './reaper.js';
import { startWebhookWorker } from './webhooks.js';
import { sandboxDriver } from './sandbox/index.js';
import { defaultSandboxSpec } from './sandbox/containers.js';

export interface SessionWorkerHandle {
  workerId: string;
  /** This process's host in the cluster (runtime/host.ts). */
  host: HostHandle;
  close(): Promise<void>;
}

export async function startSessionWorker(opts: { concurrency?: number; reaper?: boolean; onDrained?: () => void } = {}): Promise<SessionWorkerHandle> {
  const workerId = `${config.instance}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
  const log = rootLog.child({ worker: workerId });
  const live = new Map<string, AbortController>();
  const driver = sandboxDriver();

  installDefaultPorts();
  // Registers this host (its engine, its capacity) before taking anything off its queues.
  const host = await startHost({ driver, log, onDrained: opts.onDrained });
  const control = new ControlListener(live, log);
  await control.start();
  // The api's commands for containers on this host's engine (pause, resume, remove, ...).
  const commands = startCommandWorker({ driver, control, log }, host.hostId);
  // Feature reactions to session events (chat replies, task status, pair rounds).
  const reactions = eventPipeline().startConsumer();
  // Lets the api (which never talks to Docker) report live workers and engines in /readyz.
  const heartbeat = startHeartbeat(workerId, () => driver.ping());

  const worker = new Worker(
    sessionQueueName(host.hostId),
    async (job, _token, signal) => {
      const sessionId = (job.data as { sessionId: string }).sessionId;
      // A job that reached the wrong host (its sandbox moved or was recovered since) goes on to the right one.
      const where = await hosts.sandboxOfSession(sessionId);
      if (where && where.host_id !== host.hostId) {
        const target = await hosts.place(where.sandbox_id, config.hostDeadSeconds);
        if (target !== host.hostId) {
          if (target) await sessionQueue(target).add('activate', { sessionId }, { jobId: String(job.id) });
          else await enqueueActivation(sessionId, Number(String(job.id).split('_').pop()));
          return 'forwarded';
        }
      }
      signal?.addEventListener('abort', () => live.get(sessionId)?.abort('stop'));
      const outcome = await runActivation(sessionId, { driver, workerId, log, live });
      log.debug({ session: sessionId, outcome }, 'activation ended');
      return outcome;
    },
    {
      connection: createRedis({ forBullmq: true, name: 'troupe-worker' }),
      prefix: `${config.redisPrefix}:bull`,
      concurrency: opts.concurrency ?? config.workerConcurrency,
      // A dead worker's job is taken over once its lock expires.
      lockDuration: config.jobLockMs,
      stalledInterval: Math.max(1000, Math.floor(config.jobLockMs / 2)),
      // Recovery after a crash is the normal path here, not an anomaly to give up on.
      maxStalledCount: 1000,
    },
  );
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  // Out of retries: say so on the session rather than leave it "running" with no job behind it.
  worker.on('failed', (job, err) => {
    if (!job || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    const sessionId = (job.data as { sessionId: string }).sessionId;
    const reason = `Infrastructure error after ${job.attemptsMade} attempts: ${err.message}`;
    // Job ids are <session>_<activation when queued>; its claim made that +1. Anything newer
    // belongs to another activation, which this stale job must not fail.
    const queuedAt = Number(String(job.id).split('_').pop());
    void (async () => {
      const s = await getSession(sessionId);
      if (!s || (Number.isFinite(queuedAt) && s.activation > queuedAt + 1)) return;
      await writeSession(sessionId, [{ event_type: 'error', event_source: 'system', payload: { message: reason } }], {
        from: ['queued', 'running'], to: 'failed', reason, activation: s.activation,
      });
    })().catch((e) => log.error({ err: e, session: sessionId }, 'could not mark session failed'));
  });
  // Paused containers for the default sandbox shape, so new sessions skip docker create + start.
  driver.startWarmPool?.(
    { size: config.poolSize, maxAgeMs: config.poolMaxAgeSeconds * 1000 },
    [defaultSandboxSpec()],
    (err, what) => log.warn({ err }, `could not ${what}`),
  );
  const reaper = opts.reaper === false ? null : startReaper(log, { driver, sweepPipeline: () => eventPipeline().sweepLagging() });
  const webhooks = startWebhookWorker(log);
  log.info({ concurrency: opts.concurrency ?? config.workerConcurrency }, 'session worker started');

  return {
    workerId,
    host,
    async close() {
      await host.stop();
      reaper?.stop();
      await heartbeat.stop();
      // Hand live sessions back first, so close() does not wait on long model calls or tools.
      for (const ac of live.values()) ac.abort('shutdown');
      const closing = worker.close();
      const timeout = () => new Promise((r) => setTimeout(r, config.shutdownTimeoutMs).unref());
      await Promise.race([Promise.all([closing, webhooks.close(), commands.close(), reactions.close()]), timeout()]);
      await control.close();
      // A hung Docker must not hang shutdown: what is left of the pool, the reaper removes by age.
      await Promise.race([driver.stopWarmPool?.().catch(() => {}), timeout()]);
    },
  };
}
