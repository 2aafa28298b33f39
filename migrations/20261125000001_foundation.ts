// Projects, members, agents and what hangs off them (seed 004), plus agent API keys.
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('projects', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.text('description');
    t.text('created_by').notNullable();
    t.timestamps(true, true);
  });

  await knex.schema.createTable('agent_types', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    // null project = built-in type, visible to every project
    t.uuid('project_id').references('projects.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('slug').notNullable();
    t.text('description');
    t.text('default_system_prompt');
    t.text('default_image');
    t.jsonb('tools').notNullable().defaultTo('[]');
    t.timestamps(true, true);
  });
  await knex.raw('CREATE UNIQUE INDEX agent_types_builtin_slug ON agent_types (slug) WHERE project_id IS NULL');
  await knex.raw('CREATE UNIQUE INDEX agent_types_project_slug ON agent_types (project_id, slug) WHERE project_id IS NOT NULL');

  await knex.schema.createTable('agents', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.uuid('agent_type_id').references('agent_types.id');
    t.text('name').notNullable();
    t.text('handle').notNullable();
    t.text('avatar_url');
    t.text('kind').notNullable().defaultTo('hosted');
    t.text('llm_provider').notNullable().defaultTo('scripted');
    t.text('llm_model');
    t.text('llm_base_url');
    t.text('llm_api_key_sealed');
    t.text('system_prompt');
    t.boolean('can_clone_repos').notNullable().defaultTo(false);
    t.boolean('can_create_prs').notNullable().defaultTo(false);
    t.integer('max_iterations').notNullable().defaultTo(50);
    t.integer('timeout_minutes').notNullable().defaultTo(30);
    t.text('approval').notNullable().defaultTo('auto');
    t.text('webhook_url');
    t.text('webhook_secret_sealed');
    t.text('public_key');
    t.jsonb('sandbox').notNullable().defaultTo('{}');
    t.jsonb('script');
    t.text('project_role_id');
    t.timestamps(true, true);
    t.timestamp('deleted_at', { useTz: true });
  });
  await knex.raw('CREATE UNIQUE INDEX agents_project_handle ON agents (project_id, handle) WHERE deleted_at IS NULL');

  await knex.schema.createTable('project_members', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('member_type').notNullable(); // 'user' | 'agent'
    t.text('user_id');
    t.uuid('agent_id').references('agents.id').onDelete('CASCADE');
    t.text('role').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deleted_at', { useTz: true });
  });
  await knex.raw('CREATE UNIQUE INDEX project_members_user ON project_members (project_id, user_id) WHERE deleted_at IS NULL AND user_id IS NOT NULL');
  await knex.raw('CREATE INDEX project_members_by_user ON project_members (user_id) WHERE deleted_at IS NULL');
  await knex.schema.alterTable('agents', (t) => {
    t.uuid('member_id').references('project_members.id');
  });

  await knex.schema.createTable('agent_api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('key_hash').notNullable().unique();
    t.text('key_prefix').notNullable();
    t.text('name');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
  });

  await knex.schema.createTable('agent_mcp_servers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.text('server_name').notNullable();
    t.text('transport').notNullable();
    t.text('command');
    t.jsonb('args').notNullable().defaultTo('[]');
    // env values are secrets: sealed as one JSON object; only the names are kept in the clear.
    t.text('env_sealed');
    t.jsonb('env_keys').notNullable().defaultTo('[]');
    t.text('url');
    t.boolean('is_enabled').notNullable().defaultTo(true);
    t.timestamps(true, true);
  });

  await knex.schema.createTable('agent_skills', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('CASCADE');
    t.text('skill_name').notNullable();
    t.text('skill_source').notNullable();
    t.text('skill_content');
    t.text('source_url');
    t.text('description');
    t.jsonb('triggers').notNullable().defaultTo('[]');
    t.boolean('is_enabled').notNullable().defaultTo(true);
    t.timestamps(true, true);
  });

  // Built-in agent types. Their defaults fill in what an agent of the type leaves unset.
  await knex('agent_types').insert([
    {
      name: 'Developer', slug: 'developer',
      description: 'Writes and changes code in its sandbox.',
      default_system_prompt: 'You are a senior software engineer working in a sandboxed Linux container. Use the tools to inspect and change files, run commands, and call finish with a summary when the task is done.',
      tools: JSON.stringify(['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish']),
    },
    {
      name: 'Reviewer', slug: 'reviewer',
      description: 'Reads code and reviews changes.',
      default_system_prompt: 'You are a careful code reviewer. Inspect the workspace, point out problems precisely, and approve only correct work.',
      tools: JSON.stringify(['bash', 'read_file', 'list_files', 'finish']),
    },
    {
      name: 'Assistant', slug: 'assistant',
      description: 'General assistant with a shell.',
      default_system_prompt: 'You are a helpful assistant with access to a sandboxed shell.',
      tools: JSON.stringify(['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish']),
    },
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('agent_skills');
  await knex.schema.dropTableIfExists('agent_mcp_servers');
  await knex.schema.dropTableIfExists('agent_api_keys');
  await knex.schema.alterTable('agents', (t) => t.dropColumn('member_id'));
  await knex.schema.dropTableIfExists('project_members');
  await knex.schema.dropTableIfExists('agents');
  await knex.schema.dropTableIfExists('agent_types');
  await knex.schema.dropTableIfExists('projects');
}
