/**
 * Worker heartbeats in Redis, so processes that never talk to Docker (the api) can tell whether
 * any worker, and any working engine, is alive: a sorted set of worker ids scored by last beat,
 * plus what each last said about its engine.
 */
import { key, redis } from './redis.js';

const BEAT_MS = 5_000;
/** A worker that has not beaten for this long counts as gone. */
const ALIVE_MS = 3 * BEAT_MS;

const workersKey = () => key('workers');
const infoKey = () => key('worker-info');

export interface WorkerBeat {
  dockerOk: boolean;
  at: number;
}

/** Beats now and every 5 s until stopped; `probe` says whether the engine answers. */
export function startHeartbeat(workerId: string, probe: () => Promise<boolean>): { stop(): Promise<void> } {
  const beat = async () => {
    const info: WorkerBeat = { dockerOk: await probe().catch(() => false), at: Date.now() };
    await redis().multi().zadd(workersKey(), info.at, workerId).hset(infoKey(), workerId, JSON.stringify(info)).exec();
  };
  void beat().catch(() => {});
  const timer = setInterval(() => void beat().catch(() => {}), BEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await redis().multi().zrem(workersKey(), workerId).hdel(infoKey(), workerId).exec().catch(() => {});
    },
  };
}

export async function liveWorkers(): Promise<{ alive: number; dockerOk: number }> {
  const since = Date.now() - ALIVE_MS;
  const ids = await redis().zrangebyscore(workersKey(), since, '+inf');
  if (!ids.length) return { alive: 0, dockerOk: 0 };
  const infos = await redis().hmget(infoKey(), ...ids);
  const dockerOk = infos.filter((raw) => raw && (JSON.parse(raw) as WorkerBeat).dockerOk).length;
  // Old entries would only grow the set: trim what is long dead (best effort).
  void redis().zremrangebyscore(workersKey(), '-inf', since - 60_000).catch(() => {});
  return { alive: ids.length, dockerOk };
}
