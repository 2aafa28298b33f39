/**
 * Redis connections. BullMQ workers need `maxRetriesPerRequest: null` (blocking commands must not
 * give up); subscribers need a connection of their own. Keys and channels share config.redisPrefix.
 */
import { Redis } from 'ioredis';
import { config } from '../config.js';

export function createRedis(opts: { forBullmq?: boolean; name?: string } = {}): Redis {
  return new Redis(config.redisUrl, {
    maxRetriesPerRequest: opts.forBullmq ? null : 3,
    enableReadyCheck: true,
    connectionName: opts.name,
    lazyConnect: false,
  });
}

let shared: Redis | undefined;
/** The process-wide command connection (not for subscribe or blocking commands). */
export function redis(): Redis {
  shared ??= createRedis({ name: 'troupe-cmd' });
  return shared;
}

export const key = (...parts: string[]) => [config.redisPrefix, ...parts].join(':');

export async function pingRedis(): Promise<boolean> {
  try {
    return (await redis().ping()) === 'PONG';
  } catch {
    return false;
  }
}

export async function closeRedis(): Promise<void> {
  if (shared) {
    await shared.quit().catch(() => shared?.disconnect());
    shared = undefined;
  }
}
