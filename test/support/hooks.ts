// Mocha root hooks: close the shared server, worker and connections once the suite is done.
import { shutdownHarness } from './harness.js';

export const mochaHooks = {
  async afterAll() {
    await shutdownHarness();
    // Remove the containers this suite's sessions made (instance label "test").
    const { sandboxDriver } = await import('../../src/runtime/sandbox/index.js');
    const driver = sandboxDriver();
    for (const c of await driver.list({ instance: process.env.TROUPE_INSTANCE })) {
      if (c.state === 'paused') await driver.unpause(c.id).catch(() => {});
      await driver.remove(c.id).catch(() => {});
    }
    const { closeWebhookQueue } = await import('../../src/runtime/webhooks.js');
    await closeWebhookQueue();
    const { closeQueue } = await import('../../src/runtime/queue.js');
    await closeQueue();
    const { closeCommandClient } = await import('../../src/commands/client.js');
    await closeCommandClient();
    const { eventPipeline } = await import('../../src/wiring.js');
    await eventPipeline().close();
    const { closeRedis } = await import('../../src/lib/redis.js');
    await closeRedis();
    const { db } = await import('../../src/db/knex.js');
    await db.destroy();
  },
};
