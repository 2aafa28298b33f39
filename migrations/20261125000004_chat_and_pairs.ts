// Chat sessions (seed 004: a member's running chat with one agent, spanning conversations) and
// pair sessions (seed 000: a generator and a reviewer taking turns in one shared workspace).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('chat_sessions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.uuid('agent_id').notNullable().references('agents.id');
    // The project member (user or agent) whose chat this is; no one else may read it.
    t.uuid('member_id').notNullable();
    t.text('title').notNullable();
    // The conversation (session) follow-ups go to while it is not terminal.
    t.uuid('current_conversation_id');
    t.timestamps(true, true);
  });
  await knex.raw('CREATE INDEX chat_sessions_owner ON chat_sessions (project_id, member_id, agent_id, created_at DESC)');

  await knex.schema.createTable('chat_messages', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    // Insertion order, to break created_at ties.
    t.bigIncrements('seq', { primaryKey: false });
    t.uuid('chat_session_id').notNullable().references('chat_sessions.id').onDelete('CASCADE');
    t.uuid('project_id').notNullable();
    t.text('role').notNullable(); // user | agent
    t.text('content').notNullable();
    t.uuid('conversation_id');
    // The session event the message is; unique so an agent reply is recorded once, whoever sees it.
    t.uuid('event_id').unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE INDEX chat_messages_chat ON chat_messages (chat_session_id, created_at, seq)');

  await knex.schema.createTable('pair_sessions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.uuid('workspace_id').notNullable().references('sandboxes.id');
    t.uuid('generator_id').notNullable().references('agents.id');
    t.uuid('reviewer_id').notNullable().references('agents.id');
    t.text('task').notNullable();
    t.text('status').notNullable().defaultTo('active'); // active | completed | abandoned
    t.double('quality_score');
    t.boolean('drive').notNullable().defaultTo(false);
    t.integer('max_turns').notNullable().defaultTo(6);
    t.uuid('created_by_member_id');
    // Drive mode: the session whose rest advances the pair, and which role it plays.
    t.uuid('current_session_id');
    t.text('current_role');
    // The event_index of the message that started the current round (its reply is what follows).
    t.integer('current_from_index');
    // Each side's latest session: reused (woken with a message) while it is idle.
    t.uuid('generator_session_id');
    t.uuid('reviewer_session_id');
    t.text('end_reason');
    t.timestamp('ended_at', { useTz: true });
    t.timestamps(true, true);
  });
  await knex.raw('CREATE INDEX pair_sessions_project ON pair_sessions (project_id, created_at DESC)');

  await knex.schema.createTable('pair_turns', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.bigIncrements('seq', { primaryKey: false });
    t.uuid('pair_session_id').notNullable().references('pair_sessions.id').onDelete('CASCADE');
    // An agent id for generate/review; any string for interrupt (a human, a third agent).
    t.text('agent_id').notNullable();
    t.text('role').notNullable(); // generate | review | interrupt
    t.text('content').notNullable();
    // Drive mode: the session that played the turn.
    t.uuid('session_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE INDEX pair_turns_pair ON pair_turns (pair_session_id, seq)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('pair_turns');
  await knex.schema.dropTableIfExists('pair_sessions');
  await knex.schema.dropTableIfExists('chat_messages');
  await knex.schema.dropTableIfExists('chat_sessions');
}
