/**
 * `npm start`: the api and a session worker in one process, for local use. In production run
 * them apart: `npm run start:api` (any number) and `npm run start:worker` (any number, any host).
 */
import { config, ConfigError } from './config.js';
import { log } from './log.js';

async function main() {
  const apiOnly = process.argv.includes('--api-only');
  const { startApiServer } = await import('./server.js');
  const api = await startApiServer();
  const worker = apiOnly ? null : await (await import('./runtime/worker.js')).startSessionWorker();
  const url = config.publicUrl;
  console.log(`\nTroupe is running at ${url}  (${apiOnly ? 'api only' : 'api + worker'})`);
  console.log(`  API reference:  ${url}/openapi.json`);
  console.log(`  Get a token:    npm run token -- --user alice`);
  if (config.jwtSecretIsDevDefault) console.log('  Note: using the DEV default TROUPE_JWT_SECRET; set your own outside local use.');
  if (config.secretKeyIsDevDefault) console.log('  Note: using the DEV default TROUPE_SECRET_KEY for secrets at rest; set your own outside local use.');
  console.log('');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: handing sessions back, closing streams');
    const hardStop = setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 5000);
    hardStop.unref();
    await worker?.close().catch((err) => log.error({ err }, 'worker close failed'));
    await api.close().catch(() => {});
    const { db } = await import('./db/knex.js');
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error('Troupe failed to start:', err);
  process.exit(1);
});
