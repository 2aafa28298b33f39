/**
 * `npm start`: the api and a session worker in one process, for local use. In production run
 * them apart: `npm run start:api` (any number) and `npm run start:worker` (any number, any host).
 */
import { config, startupNotes } from './config.js';
import { onShutdown, runMain } from './lib/process.js';

runMain('Troupe', async () => {
  const apiOnly = process.argv.includes('--api-only');
  const { startApiServer } = await import('./server.js');
  const api = await startApiServer();
  const worker = apiOnly ? null : await (await import('./runtime/worker.js')).startSessionWorker();
  const url = config.publicUrl;
  console.log(`\nTroupe is running at ${url}  (${apiOnly ? 'api only' : 'api + worker'})`);
  console.log(`  Dashboard:      ${url}/  (sign in with a token${config.devLogin ? ', or with the dev sign-in' : '; TROUPE_DEV_LOGIN=1 adds a dev sign-in'})`);
  console.log(`  API reference:  ${url}/openapi.json`);
  console.log(`  Get a token:    npm run token -- --user alice`);
  // Dev defaults are allowed on loopback only (config.ts refuses them anywhere else): say so.
  for (const note of startupNotes(config)) console.log(`  Note: ${note}`);
  console.log('');
  // Worker first: its sessions go back to the queue before the api stops answering.
  onShutdown('troupe', async () => {
    await worker?.close();
    await api.close();
  });
});
