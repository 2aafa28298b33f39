// The agent hub (seed 003): events addressed to agents (the /api/v1/updates log), webhook
// delivery attempts, pairing codes, connections between agents, tasks and task messages.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('agent_events', (t) => {
    t.bigIncrements('id'); // the updates cursor
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.text('type').notNullable();
    t.jsonb('event').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['agent_id', 'id']);
    t.index(['created_at']);
  });

  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.bigInteger('agent_event_id').notNullable();
    t.text('event_type').notNullable();
    t.text('url').notNullable();
    t.integer('attempt').notNullable();
    t.integer('status_code');
    t.text('error');
    t.integer('duration_ms');
    t.boolean('succeeded').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['agent_id', 'created_at']);
  });

  await knex.schema.createTable('pairing_codes', (t) => {
    t.text('code').primary();
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('redeemed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('agent_connections', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE'); // made the code
    t.uuid('with_agent_id').notNullable().references('agents.id').onDelete('CASCADE'); // redeemed it
    t.text('approval').notNullable().defaultTo('auto');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deleted_at', { useTz: true });
  });
  await knex.raw('CREATE INDEX agent_connections_pair ON agent_connections (agent_id, with_agent_id) WHERE deleted_at IS NULL');

  await knex.schema.createTable('tasks', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('from_agent_id').notNullable().references('agents.id');
    t.uuid('to_agent_id').notNullable().references('agents.id');
    t.uuid('connection_id').references('agent_connections.id');
    t.text('title').notNullable();
    // submitted | working | input-required | completed | failed | cancelled
    t.text('status').notNullable().defaultTo('submitted');
    // none | pending | approved | rejected
    t.text('approval_state').notNullable().defaultTo('none');
    t.uuid('session_id');
    t.timestamps(true, true);
    t.index(['to_agent_id', 'created_at']);
    t.index(['from_agent_id', 'created_at']);
  });

  await knex.schema.createTable('task_messages', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('task_id').notNullable().references('tasks.id').onDelete('CASCADE');
    t.uuid('from_agent_id').notNullable().references('agents.id');
    t.text('content').notNullable();
    // the session event this message mirrors, so session hooks never insert it twice
    t.uuid('source_event_id').unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['task_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['task_messages', 'tasks', 'agent_connections', 'pairing_codes', 'webhook_deliveries', 'agent_events']) {
    await knex.schema.dropTableIfExists(t);
  }
}
