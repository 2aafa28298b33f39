/**
 * `npm run start:worker`: a session worker process. Run as many as you like, on any host with a
 * Docker engine (DOCKER_HOST) and access to the same Postgres and Redis. SIGTERM hands live
 * sessions back to the queue, so another worker (or this one, restarted) carries on.
 */
import { config, startupNotes } from '../src/config.js';
import { onShutdown, runMain } from '../src/lib/process.js';

runMain('Troupe worker', async () => {
  const { startSessionWorker } = await import('../src/runtime/worker.js');
  const worker = await startSessionWorker();
  console.log(`Troupe worker ${worker.workerId} started (concurrency ${config.workerConcurrency})`);
  for (const note of startupNotes(config)) console.log(`  Note: ${note}`);
  onShutdown('worker', () => worker.close());
});
