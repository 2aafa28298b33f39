/** Seed 004 agent management: agents, API keys, MCP servers, skills, agent types. */
import { defineRoute, type RouteDef } from '../registry.js';
import { nonEmpty, obj, pagination } from '../schema.js';
import * as agents from '../../services/agents.js';
import * as extras from '../../services/agent-extras.js';
import { stopSessionsOfAgent } from '../../services/sessions.js';
import { requireProject } from '../../services/access.js';

/**
 * Management: creating or changing agents, their keys, webhooks, MCP servers and skills, and
 * reading keys and webhook deliveries. Users who are not viewers only; an agent API key gets 403
 * (services/access.ts, need 'manage'), checked before the service runs.
 */
const managed = (handler: RouteDef['handler']): RouteDef['handler'] => async (ctx, input) => {
  await requireProject(input.principal, input.params.projectId, 'manage');
  return handler(ctx, input);
};

const nullableString = (max: number) => ({ type: ['string', 'null'], maxLength: max } as const);
const nullableUri = { type: ['string', 'null'], format: 'uri', maxLength: 2000 } as const;
const handle = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'lowercase letters, digits, - and _; unique in the project' } as const;

export const scriptSchema = obj({
  turns: {
    type: 'array', maxItems: 1000,
    items: obj({
      text: { type: 'string', maxLength: 100_000 },
      tool_calls: { type: 'array', maxItems: 50, items: obj({ name: nonEmpty(100), input: { type: 'object' } }, ['name']) },
    }),
  },
  token_delay_ms: { type: 'integer', minimum: 0, maximum: 10_000 },
}, ['turns']);

const sandboxSettings = obj({
  image: nullableString(300),
  memory_mb: { type: 'integer', minimum: 16, maximum: 65536 },
  cpus: { type: 'number', exclusiveMinimum: 0, maximum: 64 },
  pids: { type: 'integer', minimum: 8, maximum: 100_000 },
  network: { type: 'string', enum: ['none', 'bridge'] },
});

const agentFields = {
  name: nonEmpty(200),
  handle,
  avatar_url: nullableUri,
  agent_type_id: nullableString(100),
  kind: { type: 'string', enum: ['hosted', 'external'] },
  llm_provider: { type: 'string', enum: ['anthropic', 'openai', 'scripted'] },
  llm_model: nullableString(200),
  llm_base_url: nullableUri,
  llm_api_key: { type: ['string', 'null'], maxLength: 1000, writeOnly: true },
  system_prompt: nullableString(100_000),
  can_clone_repos: { type: 'boolean' },
  can_create_prs: { type: 'boolean' },
  max_iterations: { type: 'integer', minimum: 1, maximum: 10_000 },
  timeout_minutes: { type: 'integer', minimum: 1, maximum: 7 * 24 * 60 },
  rerun_interrupted_tools: { type: 'boolean', description: 'Run a tool call cut short by a worker crash or a pause again from the start (for idempotent tools). Default false: its result says it was interrupted and was not re-run.' },
  approval: { type: 'string', enum: ['auto', 'require'] },
  webhook_url: nullableUri,
  public_key: { type: ['string', 'null'], maxLength: 20_000, pattern: '^(-----BEGIN [A-Z ]+-----[\\s\\S]+)?$' },
  sandbox: sandboxSettings,
  script: { oneOf: [scriptSchema, { type: 'null' }] },
  project_role_id: nullableString(100),
} as const;
export const createAgentBody = obj(agentFields, ['name']);
export const updateAgentBody = { ...obj(agentFields), minProperties: 1 } as const;

const P = '/api/v1/projects/:projectId/agents';
defineRoute({
  method: 'get', path: P, tag: 'Agents', summary: 'List agents in a project',
  handler: (_ctx, { principal, params }) => agents.listAgents(principal, params.projectId),
});
defineRoute({
  method: 'post', path: P, tag: 'Agents', summary: "Create an agent (and its member_type 'agent' project member)",
  body: createAgentBody, status: 201,
  handler: managed((_ctx, { principal, params, body }) => agents.createAgent(principal, params.projectId, body)),
});
defineRoute({
  method: 'get', path: `${P}/:agentId`, tag: 'Agents', summary: 'Get an agent (by id or handle) with its MCP servers and skills',
  handler: (_ctx, { principal, params }) => agents.getAgent(principal, params.projectId, params.agentId),
});
defineRoute({
  method: 'patch', path: `${P}/:agentId`, tag: 'Agents', summary: 'Update an agent', body: updateAgentBody,
  handler: managed((_ctx, { principal, params, body }) => agents.updateAgent(principal, params.projectId, params.agentId, body)),
});
defineRoute({
  method: 'delete', path: `${P}/:agentId`, tag: 'Agents', summary: 'Soft-delete an agent and its project member; stops its running sessions',
  handler: managed(async (_ctx, { principal, params }) => {
    const a = await agents.deleteAgent(principal, params.projectId, params.agentId);
    const stopped = await stopSessionsOfAgent(a.id, 'agent deleted');
    return { id: a.id, deleted: true, stopped_sessions: stopped };
  }),
});

// API keys: shown once at creation, stored hashed, revocable.
defineRoute({
  method: 'post', path: `${P}/:agentId/api-keys`, tag: 'Agents', summary: "Create an API key for the agent (the key is shown only in this response)",
  body: obj({ name: nullableString(200) }), status: 201,
  handler: managed((_ctx, { principal, params, body }) => agents.createApiKey(principal, params.projectId, params.agentId, body)),
});
defineRoute({
  method: 'get', path: `${P}/:agentId/api-keys`, tag: 'Agents', summary: "List the agent's API keys (without the keys)",
  handler: managed((_ctx, { principal, params }) => agents.listApiKeys(principal, params.projectId, params.agentId)),
});
defineRoute({
  method: 'delete', path: `${P}/:agentId/api-keys/:keyId`, tag: 'Agents', summary: 'Revoke an API key',
  handler: managed((_ctx, { principal, params }) => agents.revokeApiKey(principal, params.projectId, params.agentId, params.keyId)),
});

// Webhooks
defineRoute({
  method: 'post', path: `${P}/:agentId/webhook-secret`, tag: 'Agents', summary: 'Create or rotate the webhook signing secret (shown only in this response)',
  body: obj({}), status: 201,
  handler: managed((_ctx, { principal, params }) => agents.rotateWebhookSecret(principal, params.projectId, params.agentId)),
});
defineRoute({
  method: 'get', path: `${P}/:agentId/webhook-deliveries`, tag: 'Agents', summary: 'Webhook delivery attempts, newest first',
  query: obj({ ...pagination }),
  handler: managed((_ctx, { principal, params, query }) => agents.listWebhookDeliveries(principal, params.projectId, params.agentId, query.limit, query.offset)),
});

// MCP servers
const mcpFields = {
  server_name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  transport: { type: 'string', enum: ['stdio', 'http'] },
  command: nullableString(1000),
  args: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 2000 } },
  env: { type: 'object', maxProperties: 100, additionalProperties: { type: 'string', maxLength: 10_000 }, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, writeOnly: true },
  url: nullableUri,
  is_enabled: { type: 'boolean' },
} as const;
export const createMcpBody = obj(mcpFields, ['server_name', 'transport']);
export const updateMcpBody = { ...obj(mcpFields), minProperties: 1 } as const;
defineRoute({
  method: 'post', path: `${P}/:agentId/mcp-servers`, tag: 'Agents', summary: 'Add an MCP server to an agent', body: createMcpBody, status: 201,
  handler: managed((_ctx, { principal, params, body }) => extras.addMcpServer(principal, params.projectId, params.agentId, body)),
});
defineRoute({
  method: 'patch', path: `${P}/:agentId/mcp-servers/:serverId`, tag: 'Agents', summary: 'Update or enable/disable an MCP server', body: updateMcpBody,
  handler: managed((_ctx, { principal, params, body }) => extras.updateMcpServer(principal, params.projectId, params.agentId, params.serverId, body)),
});
defineRoute({
  method: 'delete', path: `${P}/:agentId/mcp-servers/:serverId`, tag: 'Agents', summary: 'Remove an MCP server',
  handler: managed((_ctx, { principal, params }) => extras.deleteMcpServer(principal, params.projectId, params.agentId, params.serverId)),
});

// Skills
const triggers = { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 100 } } as const;
export const createSkillBody = obj({
  skill_name: nonEmpty(200),
  skill_source: { type: 'string', enum: ['inline', 'github_url'] },
  skill_content: { type: 'string', maxLength: 256 * 1024 },
  source_url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000 },
  triggers,
  is_enabled: { type: 'boolean' },
}, ['skill_name']);
export const updateSkillBody = { ...obj({ skill_name: nonEmpty(200), skill_content: { type: 'string', maxLength: 256 * 1024 }, triggers, is_enabled: { type: 'boolean' } }), minProperties: 1 } as const;
defineRoute({
  method: 'post', path: `${P}/:agentId/skills`, tag: 'Agents', summary: 'Add a skill (inline markdown, or fetched from a GitHub URL now)', body: createSkillBody, status: 201,
  handler: managed((_ctx, { principal, params, body }) => extras.addSkill(principal, params.projectId, params.agentId, body)),
});
defineRoute({
  method: 'patch', path: `${P}/:agentId/skills/:skillId`, tag: 'Agents', summary: 'Update or enable/disable a skill', body: updateSkillBody,
  handler: managed((_ctx, { principal, params, body }) => extras.updateSkill(principal, params.projectId, params.agentId, params.skillId, body)),
});
defineRoute({
  method: 'delete', path: `${P}/:agentId/skills/:skillId`, tag: 'Agents', summary: 'Remove a skill',
  handler: managed((_ctx, { principal, params }) => extras.deleteSkill(principal, params.projectId, params.agentId, params.skillId)),
});

// Agent types
export const createAgentTypeBody = obj({
  name: nonEmpty(200),
  slug: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
  description: nullableString(5000),
  default_system_prompt: nullableString(100_000),
  default_image: nullableString(300),
  tools: { type: 'array', items: { type: 'string', enum: ['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish'] } },
}, ['name']);
defineRoute({
  method: 'get', path: '/api/v1/agent-types', tag: 'Agents', summary: 'List built-in agent types, plus a project\'s own with ?project_id=',
  query: obj({ project_id: { type: 'string', format: 'uuid' } }),
  handler: (_ctx, { principal, query }) => extras.listAgentTypes(principal, query.project_id),
});
defineRoute({
  method: 'post', path: '/api/v1/projects/:projectId/agent-types', tag: 'Agents', summary: 'Create a custom agent type for a project',
  body: createAgentTypeBody, status: 201,
  handler: managed((_ctx, { principal, params, body }) => extras.createAgentType(principal, params.projectId, body)),
});
