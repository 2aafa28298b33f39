// A session remembers the Idempotency-Key that created it, so a retry whose first attempt
// committed but never got its answer back finds the session instead of creating another.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sessions', (t) => t.text('idempotency_key'));
  await knex.raw('CREATE UNIQUE INDEX sessions_idempotency ON sessions (project_id, created_by_member_id, idempotency_key) WHERE idempotency_key IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS sessions_idempotency');
  await knex.schema.alterTable('sessions', (t) => t.dropColumn('idempotency_key'));
}
