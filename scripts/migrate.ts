// Usage: tsx scripts/migrate.ts latest | rollback | rollback-all | status
import { db } from '../src/db/knex.js';

const cmd = process.argv[2] ?? 'latest';
try {
  if (cmd === 'latest') {
    const [, done] = await db.migrate.latest();
    console.log(done.length ? `[migrate] applied ${done.length}: ${done.join(', ')}` : '[migrate] database is up to date');
  } else if (cmd === 'rollback') {
    const [, done] = await db.migrate.rollback();
    console.log(`[migrate] rolled back ${done.length}`);
  } else if (cmd === 'rollback-all') {
    const [, done] = await db.migrate.rollback(undefined, true);
    console.log(`[migrate] rolled back ${done.length}`);
  } else if (cmd === 'status') {
    const [done, pending] = await db.migrate.list();
    console.log({ done: done.map((m: { name: string }) => m.name), pending });
  } else {
    throw new Error(`unknown command ${cmd}: expected latest | rollback | rollback-all | status`);
  }
} catch (err) {
  console.error(`[migrate] failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
