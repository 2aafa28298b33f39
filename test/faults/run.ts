/**
 * `npm run test:faults`: the fault suite. Real api and worker processes on a redis-server and a
 * PostgreSQL cluster the suite starts for itself (free ports, data under .troupe/faults-<tag>/,
 * removed at the end; see test/faults/env.ts), database troupe_faults, scripted agents in
 * troupe-sandbox-minimal containers; then, one after the other:
 *
 *   worker-kill   SIGKILL a worker at random moments (20x) under a steady load on two workers
 *   api-restart   restart the api (SIGTERM, then SIGKILL) with SSE and Socket.IO clients attached
 *   redis         restart the run's Redis (append-only persistence) mid-load
 *   redis-data-loss  the run's Redis keys vanish mid-load (Redis without persistence, restarted)
 *   postgres      restart the run's Postgres mid-load
 *   pg-mid-create Postgres drops the api's connection in the middle of a session create (own db only)
 *   fuzz          thousands of malformed or hostile requests across every route in /openapi.json
 *
 * Prints the table and writes test/faults/results/latest.json; exits 1 if any fault lost,
 * duplicated or stranded anything (or, for the fuzz, answered 5xx, died, or changed a row).
 *
 *   tsx test/faults/run.ts [--only=worker-kill,fuzz] [--kills=20] [--in-flight=8] [--fuzz-requests=6000] [--seed=N]
 *
 * Only the suite's own services are restarted: the machine's shared Postgres and Redis (and
 * whoever else uses them) are never disturbed.
 */
import { ADMIN_DB_URL, FAULTS_DB_NAME, FAULTS_DB_URL, procEnv } from './env.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import knexFactory from 'knex';
import { Cluster, freePort, killOnExit, pgUp, redisUp, removeContainers, resetLogs, ROOT, startOwnServices, stopOwnServices, wipeRedisPrefix } from './cluster.js';
import { db, uniq, userToken } from './client.js';
import { emptyResult, table, verdict, writeResults, type FaultResult } from './report.js';
import { workerKills } from './scenarios/worker-kill.js';
import { apiRestarts } from './scenarios/api-restart.js';
import { redisDataLoss, redisRestarts } from './scenarios/redis-restart.js';
import { postgresRestarts } from './scenarios/postgres-restart.js';
import { pgMidCreate } from './scenarios/pg-mid-create.js';
import { fuzz } from './scenarios/fuzz.js';

const run = promisify(execFile);
const arg = (name: string, def: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def;
const ALL = ['worker-kill', 'api-restart', 'redis', 'redis-data-loss', 'postgres', 'pg-mid-create', 'fuzz'];
const only = arg('only', ALL.join(',')).split(',').filter(Boolean);
for (const o of only) if (!ALL.includes(o)) throw new Error(`--only: unknown fault "${o}" (known: ${ALL.join(', ')})`);
const kills = Number(arg('kills', '20'));
const inFlight = Number(arg('in-flight', '8'));
const fuzzCount = Number(arg('fuzz-requests', '6000'));

const log = (msg: string) => console.log(`[faults ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function prepareDatabase() {
  const admin = knexFactory({ client: 'pg', connection: ADMIN_DB_URL, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`CREATE DATABASE ${FAULTS_DB_NAME}`);
  } finally {
    await admin.destroy();
  }
  const { stdout } = await run('npx', ['tsx', 'scripts/migrate.ts', 'latest'], { cwd: ROOT, env: { ...process.env, DATABASE_URL: FAULTS_DB_URL } });
  log(stdout.trim());
}

async function main() {
  const startedAt = new Date();
  log(`prefix ${procEnv.TROUPE_REDIS_PREFIX}, instance ${procEnv.TROUPE_INSTANCE}, database ${FAULTS_DB_NAME}; faults: ${only.join(', ')}`);
  resetLogs();
  await startOwnServices(log);
  await prepareDatabase();
  const cluster = new Cluster(await freePort());
  // The fuzzed api runs alone (no worker, a queue prefix of its own), so nothing but the
  // requests can change a row while it is measured.
  const fuzzCluster = new Cluster(await freePort(), { TROUPE_REDIS_PREFIX: `${procEnv.TROUPE_REDIS_PREFIX}-fuzz` });
  killOnExit(() => [cluster, fuzzCluster]);
  const results: FaultResult[] = [];
  const attempt = async (name: string, fn: () => Promise<FaultResult>) => {
    log(`${name}: starting`);
    const t0 = Date.now();
    try {
      const r = await fn();
      results.push(r);
      log(`${name}: ${verdict(r) ? 'pass' : 'FAIL'} (${Math.round((Date.now() - t0) / 1000)} s)`);
      for (const p of r.problems.slice(0, 15)) log(`  ${p}`);
    } catch (err) {
      const r = emptyResult(name);
      r.ok = false;
      r.seconds = (Date.now() - t0) / 1000;
      r.problems.push(`the scenario itself failed: ${(err as Error).stack ?? err}`);
      results.push(r);
      log(`${name}: FAIL: ${(err as Error).stack ?? err}`);
    }
    // Whatever the fault did, the services are back before the next one.
    if (!(await redisUp()) || !(await pgUp())) throw new Error('Redis or Postgres is not up after a fault');
  };
  try {
    await cluster.startApi();
    await cluster.ensureWorkers(2);
    const token = await userToken(uniq('faults-owner'));
    if (only.includes('worker-kill')) await attempt('worker-kill', () => workerKills(cluster, token, { kills, inFlight, drainMs: 60_000 }));
    if (only.includes('api-restart')) await attempt('api-restart', () => apiRestarts(cluster, token, { drainMs: 60_000 }));
    if (only.includes('redis')) await attempt('redis', () => redisRestarts(cluster, token, { inFlight, drainMs: 60_000 }));
    if (only.includes('redis-data-loss')) await attempt('redis-data-loss', () => redisDataLoss(cluster, token, { inFlight, drainMs: 60_000 }));
    if (only.includes('postgres')) await attempt('postgres', () => postgresRestarts(cluster, token, { inFlight, drainMs: 60_000 }));
    if (only.includes('pg-mid-create')) await attempt('pg-mid-create', () => pgMidCreate(cluster, token, { drainMs: 60_000 }));
    await cluster.stopAll();
    if (only.includes('fuzz')) await attempt('fuzz', () => fuzz(fuzzCluster, { requests: fuzzCount, timeBudgetMs: 120_000 }));
  } finally {
    await cluster.stopAll();
    await fuzzCluster.stopAll();
    const removed = await removeContainers(procEnv.TROUPE_INSTANCE).catch(() => 0);
    await wipeRedisPrefix(procEnv.TROUPE_REDIS_PREFIX).catch((err) => log(`redis cleanup failed: ${err}`));
    await db.destroy().catch(() => {});
    await stopOwnServices().catch((err) => log(`stopping the own services failed: ${err}`));
    log(`cleaned up: ${removed} container(s), redis keys ${procEnv.TROUPE_REDIS_PREFIX}:*; logs in test/faults/results/logs/`);
  }
  const file = writeResults(results, startedAt);
  console.log(`\n${table(results)}\n`);
  for (const r of results.filter((x) => !verdict(x))) {
    console.log(`${r.name}: FAIL`);
    for (const p of r.problems.slice(0, 8)) console.log(`  - ${p}`);
  }
  console.log(`${results.every(verdict) ? 'PASS' : 'FAIL'} in ${Math.round((Date.now() - startedAt.getTime()) / 1000)} s; results in ${file.replace(ROOT + '/', '')}`);
  process.exit(results.every(verdict) ? 0 : 1);
}

main().catch((err) => {
  console.error('[faults] the suite could not run:', err);
  process.exit(2);
});
