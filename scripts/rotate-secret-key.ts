/**
 * Re-encrypts every secret stored at rest under a new TROUPE_SECRET_KEY, in one transaction:
 *
 *   TROUPE_SECRET_KEY_OLD=<current key> TROUPE_SECRET_KEY=<new key> npm run rotate-secret-key [-- --dry-run]
 *
 * TROUPE_SECRET_KEY_OLD=dev names the development default (data written by a server that ran
 * without TROUPE_SECRET_KEY). Every `*_sealed` column of every table is covered (found in the
 * database catalogue, so columns added later are too). A value already sealed under the new key
 * is left as it is, so the script can be run again; a value that opens under neither key stops
 * it and nothing is changed. Stop the api and the workers first (see SECURITY.md): a process
 * still running with the old key would keep sealing new values under it.
 */
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

export interface SealedColumn {
  table: string;
  column: string;
}

export interface RotationCount extends SealedColumn {
  /** Values re-sealed under the new key. */
  rotated: number;
  /** Values that were already under the new key (an earlier, interrupted or repeated run). */
  alreadyNew: number;
}

/** Every text column named `*_sealed` in the current schema, of tables that have an `id`. */
export async function sealedColumns(conn: Knex | Knex.Transaction): Promise<SealedColumn[]> {
  const { rows } = await conn.raw(`
    select c.table_name as "table", c.column_name as "column"
      from information_schema.columns c
     where c.table_schema = current_schema() and c.column_name like '%\\_sealed' and c.data_type = 'text'
       and exists (select 1 from information_schema.columns k
                    where k.table_schema = c.table_schema and k.table_name = c.table_name and k.column_name = 'id')
     order by 1, 2`);
  return rows as SealedColumn[];
}

/**
 * Re-seals every stored secret from `oldKey` to `newKey` inside `tx` (the caller commits or rolls
 * back). Throws, naming the row, if a value opens under neither key.
 */
export async function rotateSealedSecrets(tx: Knex.Transaction, oldKey: Buffer, newKey: Buffer): Promise<RotationCount[]> {
  const { seal, unseal } = await import('../src/lib/secrets.js');
  const tryUnseal = (value: string, key: Buffer): string | undefined => {
    try {
      return unseal(value, key);
    } catch {
      return undefined;
    }
  };
  const out: RotationCount[] = [];
  for (const { table, column } of await sealedColumns(tx)) {
    const count: RotationCount = { table, column, rotated: 0, alreadyNew: 0 };
    const rows = await tx(table).whereNotNull(column).forUpdate().select('id', column);
    for (const row of rows) {
      const value = row[column] as string;
      const plain = tryUnseal(value, oldKey);
      if (plain === undefined) {
        if (tryUnseal(value, newKey) !== undefined) {
          count.alreadyNew++;
          continue;
        }
        throw new Error(`${table}.${column} of row ${row.id} opens under neither the old nor the new key: nothing was changed`);
      }
      await tx(table).where({ id: row.id }).update({ [column]: seal(plain, newKey) });
      count.rotated++;
    }
    out.push(count);
  }
  return out;
}

const DRY_RUN = new Error('dry run');

async function main(): Promise<number> {
  const dryRun = process.argv.includes('--dry-run');
  let oldKey: Buffer;
  let newKey: Buffer;
  try {
    const { decodeSecretKey, DEV_SECRET_KEY_HEX, isKnownSecretKey } = await import('../src/config.js');
    const key = (name: string, raw: string | undefined): Buffer => {
      if (!raw) throw new Error(`${name} is not set`);
      const k = raw === 'dev' ? Buffer.from(DEV_SECRET_KEY_HEX, 'hex') : decodeSecretKey(raw);
      if (!k) throw new Error(`${name}: expected 32 bytes as 64 hex characters or base64${name.endsWith('OLD') ? ', or "dev" for the development default' : ''}`);
      return k;
    };
    oldKey = key('TROUPE_SECRET_KEY_OLD', process.env.TROUPE_SECRET_KEY_OLD);
    newKey = key('TROUPE_SECRET_KEY', process.env.TROUPE_SECRET_KEY);
    if (oldKey.equals(newKey)) throw new Error('TROUPE_SECRET_KEY_OLD and TROUPE_SECRET_KEY are the same key');
    if (isKnownSecretKey(newKey)) throw new Error('TROUPE_SECRET_KEY is a publicly known key: generate one with openssl rand -hex 32');
  } catch (err) {
    console.error(`rotate-secret-key: ${(err as Error).message}`);
    console.error('usage: TROUPE_SECRET_KEY_OLD=<current key, or "dev"> TROUPE_SECRET_KEY=<new key> npm run rotate-secret-key [-- --dry-run]');
    return 2;
  }
  const { db } = await import('../src/db/knex.js');
  try {
    let counts: RotationCount[] = [];
    try {
      await db.transaction(async (tx) => {
        counts = await rotateSealedSecrets(tx, oldKey, newKey);
        if (dryRun) throw DRY_RUN; // rolls the transaction back
      });
    } catch (err) {
      if (err !== DRY_RUN) throw err;
    }
    for (const c of counts) console.log(`${c.table}.${c.column}: ${c.rotated} re-encrypted, ${c.alreadyNew} already under the new key`);
    const total = counts.reduce((n, c) => n + c.rotated, 0);
    console.log(dryRun
      ? `dry run: ${total} value(s) would be re-encrypted; nothing was changed`
      : `done: ${total} value(s) re-encrypted in one transaction. Start the api and workers with the new TROUPE_SECRET_KEY.`);
    return 0;
  } catch (err) {
    console.error(`rotate-secret-key failed, nothing was changed: ${(err as Error).message}`);
    return 1;
  } finally {
    await db.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
