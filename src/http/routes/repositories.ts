/**
 * Repositories a project's agents work on (issue 14): add, list, change, remove. The token is
 * write-only (`has_token` in responses) and checked with the forge when given.
 */
import { defineRoute } from '../registry.js';
import { obj } from '../schema.js';
import * as repositories from '../../services/repositories.js';

const P = '/api/v1/projects/:projectId/repositories';
const TAG = 'Repositories';

const fields = {
  name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$', description: 'unique in the project; the sandbox directory /workspace/<name>' },
  clone_url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000, description: 'https://host/owner/name(.git), without credentials' },
  default_branch: { type: 'string', minLength: 1, maxLength: 200, description: "the base of new branches when a session names none (default: the forge's)" },
  forge: { type: 'string', enum: ['github'], description: 'github (GitLab and Gitea may follow)' },
  api_base_url: { type: ['string', 'null'], format: 'uri', pattern: '^https?://', maxLength: 2000, description: "the forge's REST API (default https://api.github.com; null resets it)" },
  token: { type: 'string', minLength: 1, maxLength: 2000, writeOnly: true, description: 'access token: checked with the forge, stored encrypted, never returned' },
} as const;
export const createRepositoryBody = obj(fields, ['name', 'clone_url', 'token']);
export const updateRepositoryBody = { ...obj(fields), minProperties: 1 } as const;

defineRoute({
  method: 'get', path: P, tag: TAG, summary: "The project's repositories",
  handler: (_ctx, { principal, params }) => repositories.listRepositories(principal, params.projectId),
});
defineRoute({
  method: 'post', path: P, tag: TAG, summary: 'Add a repository (its token is checked with the forge; 422 when the forge refuses it)',
  body: createRepositoryBody, status: 201,
  handler: (_ctx, { principal, params, body }) => repositories.createRepository(principal, params.projectId, body),
});
defineRoute({
  method: 'get', path: `${P}/:repoId`, tag: TAG, summary: 'Get a repository (by id or name)',
  handler: (_ctx, { principal, params }) => repositories.getRepository(principal, params.projectId, params.repoId),
});
defineRoute({
  method: 'patch', path: `${P}/:repoId`, tag: TAG,
  summary: 'Change a repository; a new clone URL, API base URL or forge clears the stored token unless the request gives it again (secrets_cleared)',
  body: updateRepositoryBody,
  handler: (_ctx, { principal, params, body }) => repositories.updateRepository(principal, params.projectId, params.repoId, body),
});
defineRoute({
  method: 'delete', path: `${P}/:repoId`, tag: TAG, summary: 'Remove a repository',
  handler: (_ctx, { principal, params }) => repositories.deleteRepository(principal, params.projectId, params.repoId),
});
