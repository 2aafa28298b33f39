// Sandboxes, sessions (what seed 004 calls conversations and seeds 001/002 sessions: one row),
// their durable events, and idempotency records for retried POSTs.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandboxes', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.uuid('agent_id').references('agents.id');
    t.text('image').notNullable();
    t.text('env_sealed');
    t.jsonb('env_keys').notNullable().defaultTo('[]');
    t.jsonb('limits').notNullable().defaultTo('{}');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.integer('timeout_seconds');
    t.text('container_id');
    // active | paused | stopped
    t.text('state').notNullable().defaultTo('active');
    // set when the sandbox was made for one session (POST /api/v1/sessions, conversations)
    t.uuid('owner_session_id');
    t.timestamps(true, true);
  });
  await knex.raw('CREATE INDEX sandboxes_project ON sandboxes (project_id, created_at DESC)');

  await knex.schema.createTable('sessions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.uuid('agent_id').notNullable().references('agents.id');
    t.uuid('sandbox_id').notNullable().references('sandboxes.id');
    t.uuid('created_by_member_id');
    t.text('trigger_type').notNullable().defaultTo('api');
    t.text('task_id');
    t.text('task_title');
    t.uuid('chat_session_id');
    // queued | running | idle | paused | completed | stopped | failed
    t.text('status').notNullable().defaultTo('queued');
    t.text('error');
    t.integer('iteration_count').notNullable().defaultTo(0);
    // Fencing token: bumped by every claim and every control action, so a worker that lost the
    // session (stalled, paused, stopped) can no longer write to it.
    t.integer('activation').notNullable().defaultTo(0);
    t.text('worker_id');
    t.integer('next_event_index').notNullable().defaultTo(0);
    t.text('branch_name');
    t.text('pr_url');
    t.text('prompt');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.jsonb('data').notNullable().defaultTo('{}');
    t.timestamp('last_active_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    t.timestamps(true, true);
  });
  await knex.raw('CREATE INDEX sessions_agent ON sessions (agent_id, created_at DESC)');
  await knex.raw('CREATE INDEX sessions_project ON sessions (project_id, created_at DESC)');
  await knex.raw('CREATE INDEX sessions_sandbox ON sessions (sandbox_id)');
  await knex.raw("CREATE INDEX sessions_idle ON sessions (last_active_at) WHERE status = 'idle'");

  await knex.schema.createTable('session_events', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('session_id').notNullable().references('sessions.id').onDelete('CASCADE');
    t.uuid('project_id').notNullable();
    t.integer('event_index').notNullable();
    t.text('event_type').notNullable();
    t.text('event_source').notNullable();
    t.jsonb('payload').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['session_id', 'event_index']);
  });

  await knex.schema.createTable('idempotency_keys', (t) => {
    // scope = caller + route, so two callers may use the same key independently
    t.text('scope').notNullable();
    t.text('key').notNullable();
    t.integer('status').notNullable();
    t.jsonb('body').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['scope', 'key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('idempotency_keys');
  await knex.schema.dropTableIfExists('session_events');
  await knex.schema.dropTableIfExists('sessions');
  await knex.schema.dropTableIfExists('sandboxes');
}
