/** Process entry helpers shared by `npm start` (src/main.ts) and the worker (workers/main.ts). */
import { config, ConfigError } from '../config.js';
import { log } from '../log.js';

/**
 * On SIGINT/SIGTERM run `stop` once (hand sessions back, close streams), then close the database
 * pool and exit; a hard deadline makes sure a stuck close cannot keep the process alive.
 */
export function onShutdown(what: string, stop: () => Promise<void>, opts: { extraGraceMs?: number } = {}): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${what} shutting down`);
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 5000 + (opts.extraGraceMs ?? 0)).unref();
    await stop().catch((err) => log.error({ err }, 'shutdown step failed'));
    const { db } = await import('../db/knex.js');
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** Runs an entry point; configuration errors print as they are, anything else with its stack. */
export function runMain(what: string, main: () => Promise<void>): void {
  main().catch((err) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`${what} failed to start:`, err);
    process.exit(1);
  });
}
