/**
 * `npm run start:worker`: a worker host process. Run one per Docker engine (DOCKER_HOST), on any
 * machine with access to the same Postgres and Redis (several processes on one engine share its
 * host id and its queues). SIGTERM drains the host when another live host can take its sandboxes
 * (running turns finish, idle and paused sandboxes move with their files); otherwise it hands live
 * sessions back to the queue, so another worker (or this one, restarted) carries on.
 */
import { config, startupNotes } from '../src/config.js';
import { onShutdown, runMain } from '../src/lib/process.js';

runMain('Troupe worker', async () => {
  const { startSessionWorker } = await import('../src/runtime/worker.js');
  // An admin's drain (POST /api/v1/admin/hosts/:id/drain) ends with the process leaving.
  const worker = await startSessionWorker({ onDrained: () => process.kill(process.pid, 'SIGTERM') });
  console.log(`Troupe worker ${worker.workerId} started (host ${worker.host.hostId}, concurrency ${config.workerConcurrency})`);
  for (const note of startupNotes(config)) console.log(`  Note: ${note}`);
  onShutdown('worker', async () => {
    await worker.host.drain({ onlyIfOthers: true });
    await worker.close();
  }, { extraGraceMs: config.hostDrainSeconds * 1000 });
});
