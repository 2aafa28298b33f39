import knexFactory, { type Knex } from 'knex';
import knexConfig from '../../knexfile.js';

/** The process-wide connection pool. */
export const db: Knex = knexFactory(knexConfig);

export type Tx = Knex.Transaction;
export type Db = Knex | Knex.Transaction;

export async function pingDb(): Promise<boolean> {
  try {
    await db.raw('select 1');
    return true;
  } catch {
    return false;
  }
}
