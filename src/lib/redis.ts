/**
 * Redis connections. BullMQ workers need `maxRetriesPerRequest: null` (blocking commands must not
 * give up); subscribers need a connection of their own. Keys and channels share config.redisPrefix.
 */
import { Redis } from 'ioredis';
import { config } from '../config.js';
import { log } from '../log.js';

export function createRedis(opts: { forBullmq?: boolean; name?: string } = {}): Redis {
  const client = new Redis(config.redisUrl, {
    maxRetriesPerRequest: opts.forBullmq ? null : 3,
    enableReadyCheck: true,
    connectionName: opts.name,
    lazyConnect: false,
  });
  // ioredis reconnects by itself; without a listener each failed attempt is an "unhandled error".
  client.on('error', (err) => log.debug({ err: err.message, connection: opts.name }, 'redis connection error'));
  return client;
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
