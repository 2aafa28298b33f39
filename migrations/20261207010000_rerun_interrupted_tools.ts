// Agents choose what happens to a tool call cut short by a worker crash or a pause: by default it
// is not run again (its result says it was interrupted, and the model decides); an agent whose
// tools are idempotent may ask for today's re-run instead.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('agents', (t) => {
    t.boolean('rerun_interrupted_tools').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('agents', (t) => {
    t.dropColumn('rerun_interrupted_tools');
  });
}
