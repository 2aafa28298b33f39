/** Restart Redis (append-only persistence, as scripts/setup.sh runs it) mid-load; or lose its data. */
import { restartRedis, wipeRedisPrefix, type Cluster } from '../cluster.js';
import { procEnv } from '../env.js';
import type { FaultResult } from '../report.js';
import { restartUnderLoad } from './service-restart.js';

export function redisRestarts(c: Cluster, token: string, opts: { inFlight: number; drainMs: number }): Promise<FaultResult> {
  return restartUnderLoad(c, token, { name: 'Restart Redis mid-load (appendonly; 0 s and 3 s down)', restart: restartRedis, downs: [0, 3000] }, opts);
}

/**
 * What a Redis without persistence does to the runtime when it restarts, without restarting the
 * server: every key of the run's prefix (queue, locks, buffers) disappears mid-load.
 */
export function redisDataLoss(c: Cluster, token: string, opts: { inFlight: number; drainMs: number }): Promise<FaultResult> {
  return restartUnderLoad(c, token, {
    name: "Redis loses its data mid-load (the run's keys wiped)",
    restart: async () => {
      const t0 = Date.now();
      await wipeRedisPrefix(procEnv.TROUPE_REDIS_PREFIX);
      return { downFor: Date.now() - t0 };
    },
    downs: [0],
  }, opts);
}
