/**
 * The session queue. One job = one activation of one session actor. Job ids are
 * `<sessionId>_<activation>` so that re-enqueueing the same activation (a retry, the reaper's
 * sweep for stranded sessions) is a no-op while that job exists.
 */
import { Queue } from 'bullmq';
import { config } from '../config.js';
import { createRedis } from '../lib/redis.js';
import { SESSION_JOB_RETRY } from './retry-policy.js';

export const SESSION_QUEUE = 'sessions';

let queue: Queue | undefined;
export function sessionQueue(): Queue {
  queue ??= new Queue(SESSION_QUEUE, {
    connection: createRedis({ forBullmq: true, name: 'troupe-queue' }),
    prefix: `${config.redisPrefix}:bull`,
    defaultJobOptions: {
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 24 * 3600, count: 1000 },
      // Retried only when the infrastructure failed; see retry-policy.ts.
      ...SESSION_JOB_RETRY,
    },
  });
  return queue;
}

export async function enqueueActivation(sessionId: string, activation: number): Promise<void> {
  await sessionQueue().add('activate', { sessionId }, { jobId: `${sessionId}_${activation}` });
}

export async function closeQueue(): Promise<void> {
  await queue?.close();
  queue = undefined;
}
