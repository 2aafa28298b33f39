// Mocha root hooks: close the shared server, worker and connections once the suite is done.
import { shutdownHarness } from './harness.js';

export const mochaHooks = {
  async afterAll() {
    await shutdownHarness();
    const { closeQueue } = await import('../../src/runtime/queue.js');
    await closeQueue();
    const { closeRedis } = await import('../../src/lib/redis.js');
    await closeRedis();
    const { db } = await import('../../src/db/knex.js');
    await db.destroy();
  },
};
