// The event pipeline's per-session cursor (which events the feature listeners have handled), and
// the claim that lets one process start a driven pair's next round without holding a row lock.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sessions', (t) => {
    // event_index of the last event every listener has handled (-1: none yet).
    t.integer('reacted_index').notNullable().defaultTo(-1);
  });
  // Events written before the pipeline existed were handled by the hooks of the time.
  await knex.raw('UPDATE sessions SET reacted_index = next_event_index - 1');
  await knex.raw("CREATE INDEX sessions_unreacted ON sessions (updated_at) WHERE trigger_type <> 'api' AND reacted_index < next_event_index - 1");
  await knex.schema.alterTable('pair_sessions', (t) => {
    t.uuid('round_claim');
    t.timestamp('round_claimed_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('pair_sessions', (t) => {
    t.dropColumn('round_claim');
    t.dropColumn('round_claimed_at');
  });
  await knex.raw('DROP INDEX IF EXISTS sessions_unreacted');
  await knex.schema.alterTable('sessions', (t) => t.dropColumn('reacted_index'));
}
