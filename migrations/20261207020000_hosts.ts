// Worker hosts (issue 13): each worker host owns one Docker engine, registers here and heartbeats;
// a sandbox records the host its container lives on, so every command and activation for it is
// routed to that host's queues. `host_id` null: not placed yet (or its host was lost).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('hosts', (t) => {
    t.text('id').primary();
    t.text('engine').notNullable();
    t.integer('capacity').notNullable();
    t.text('state').notNullable().defaultTo('live'); // live | draining | dead
    t.timestamp('heartbeat_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('state_changed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.alterTable('sandboxes', (t) => {
    t.text('host_id');
    t.index(['host_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sandboxes', (t) => t.dropColumn('host_id'));
  await knex.schema.dropTable('hosts');
}
