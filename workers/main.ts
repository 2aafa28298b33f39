/**
 * `npm run start:worker`: a session worker process. Run as many as you like, on any host with a
 * Docker engine (DOCKER_HOST) and access to the same Postgres and Redis. SIGTERM hands live
 * sessions back to the queue, so another worker (or this one, restarted) carries on.
 */
import { config, ConfigError } from '../src/config.js';
import { log } from '../src/log.js';

async function main() {
  const { startSessionWorker } = await import('../src/runtime/worker.js');
  const worker = await startSessionWorker();
  console.log(`Troupe worker ${worker.workerId} started (concurrency ${config.workerConcurrency})`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker shutting down');
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 5000).unref();
    await worker.close();
    const { db } = await import('../src/db/knex.js');
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error('Troupe worker failed to start:', err);
  process.exit(1);
});
