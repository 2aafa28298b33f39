// Idempotency keys in progress are leases: the attempt holding one renews it while it runs, so a
// retry can tell a live attempt (wait for its answer) from a dead one (take the key over within
// seconds, not after a fixed minute).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('idempotency_keys', (t) => {
    t.uuid('owner');
    t.timestamp('lease_until', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('idempotency_keys', (t) => {
    t.dropColumn('owner');
    t.dropColumn('lease_until');
  });
}
