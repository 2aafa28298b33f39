/**
 * The session queues: one per worker host (`sessions.<hostId>`), so an activation runs on the
 * host that holds its sandbox. One job = one activation of one session actor. Job ids are
 * `<sessionId>_<activation>` so that re-enqueueing the same activation (a retry, the reaper's
 * sweep for stranded sessions) is a no-op while that job exists.
 *
 * A session whose sandbox finds no host with room stays `queued`: a durable status event says it
 * waits for a host (`waiting_for_host: true`), and a host's sweep (runtime/host.ts) starts it
 * when room frees.
 */
import { Queue } from 'bullmq';
import { config } from '../config.js';
import * as hosts from '../db/repositories/hosts.js';
import { writeSession } from '../db/session-store.js';
import { createRedis } from '../lib/redis.js';
import { SESSION_JOB_RETRY } from './retry-policy.js';

export const SESSION_QUEUE = 'sessions';

/** The activation queue of one host (BullMQ queue names must not contain ':'; host ids cannot). */
export const sessionQueueName = (hostId: string) => `${SESSION_QUEUE}.${hostId}`;

const queues = new Map<string, Queue>();
/** A host's session queue; by default this process's host. */
export function sessionQueue(hostId = config.hostId): Queue {
  let queue = queues.get(hostId);
  if (!queue) {
    queue = new Queue(sessionQueueName(hostId), {
      connection: createRedis({ forBullmq: true, name: 'troupe-queue' }),
      prefix: `${config.redisPrefix}:bull`,
      defaultJobOptions: {
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
        // Retried only when the infrastructure failed; see retry-policy.ts.
        ...SESSION_JOB_RETRY,
      },
    });
    queues.set(hostId, queue);
  }
  return queue;
}

/**
 * Queues one activation on the host of the session's sandbox, placing the sandbox if it has no
 * host. Returns the host, or null when no host has room (the session then waits, visibly).
 */
export async function enqueueActivation(sessionId: string, activation: number): Promise<string | null> {
  const s = await hosts.sandboxOfSession(sessionId);
  if (!s) return null;
  const hostId = await hosts.place(s.sandbox_id, config.hostDeadSeconds);
  if (!hostId) {
    if (await hosts.alreadyWaiting(sessionId)) return null;
    await writeSession(sessionId, [{
      event_type: 'status', event_source: 'system',
      payload: { status: 'queued', waiting_for_host: true, reason: 'waiting for a worker host with room' },
    }], { from: ['queued'], activation });
    return null;
  }
  await sessionQueue(hostId).add('activate', { sessionId }, { jobId: `${sessionId}_${activation}` });
  return hostId;
}

export async function closeQueue(): Promise<void> {
  const all = [...queues.values()];
  queues.clear();
  await Promise.all(all.map((q) => q.close()));
}

/**
 * Empties a dead host's queues: its activations were recovered onto other hosts (with a newer
 * activation), and its commands were for containers that are gone. A host that comes back
 * therefore finds nothing stale to run.
 */
export async function obliterateHostQueues(hostId: string): Promise<void> {
  const { commandQueueName } = await import('../commands/protocol.js');
  const commands = new Queue(commandQueueName(hostId), { connection: createRedis({ forBullmq: true, name: 'troupe-obliterate' }), prefix: `${config.redisPrefix}:bull` });
  try {
    await Promise.all([sessionQueue(hostId).obliterate({ force: true }), commands.obliterate({ force: true })]);
  } finally {
    await commands.close();
  }
}
