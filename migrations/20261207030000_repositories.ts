// Repositories a project's agents work on (issue 14, seed 004's can_clone_repos / can_create_prs):
// where to clone from, which forge API opens pull requests, and the access token (sealed, never
// returned). Sessions and tasks may name one; a session records the branch it works on
// (branch_name, already a column) and the pull request it opened (pr_url, pr_number).
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('repositories', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    // Also the directory in the sandbox: /workspace/<name>.
    t.text('name').notNullable();
    t.text('clone_url').notNullable();
    t.text('default_branch').notNullable().defaultTo('main');
    // github (gitlab, gitea later)
    t.text('forge').notNullable().defaultTo('github');
    t.text('api_base_url').notNullable();
    // owner/name on the forge, derived from the clone URL
    t.text('full_name').notNullable();
    t.text('token_sealed');
    t.timestamps(true, true);
    t.unique(['project_id', 'name']);
  });
  await knex.schema.alterTable('sessions', (t) => {
    t.uuid('repository_id').references('repositories.id').onDelete('SET NULL');
    t.text('base_branch');
    t.integer('pr_number');
  });
  await knex.schema.alterTable('tasks', (t) => {
    t.uuid('repository_id').references('repositories.id').onDelete('SET NULL');
    t.text('base_branch');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tasks', (t) => {
    t.dropColumn('repository_id');
    t.dropColumn('base_branch');
  });
  await knex.schema.alterTable('sessions', (t) => {
    t.dropColumn('repository_id');
    t.dropColumn('base_branch');
    t.dropColumn('pr_number');
  });
  await knex.schema.dropTable('repositories');
}
