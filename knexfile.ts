// knex CLI and scripts/migrate.ts read this. Migrations are TypeScript, run through tsx.
import { config } from './src/config.js';

export default {
  client: 'pg',
  connection: config.databaseUrl,
  pool: { min: 0, max: 20 },
  migrations: { directory: './migrations', loadExtensions: ['.ts'], tableName: 'knex_migrations' },
};
