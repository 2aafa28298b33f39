/**
 * What the API shows of an agent and what hangs off it. Secrets never appear: a sealed model key
 * or webhook secret shows as `has_…`, an MCP server's env as the names of its variables.
 */
import type { AgentRow } from '../db/repositories/agents.js';
import type { AgentTypeRow } from '../db/repositories/agent-types.js';
import type { McpServerRow } from '../db/repositories/agent-mcp-servers.js';
import type { SkillRow } from '../db/repositories/agent-skills.js';

export function serializeAgent(a: AgentRow, types: Map<string, AgentTypeRow>) {
  const t = a.agent_type_id ? types.get(a.agent_type_id) : undefined;
  return {
    id: a.id,
    project_id: a.project_id,
    name: a.name,
    handle: a.handle,
    avatar_url: a.avatar_url,
    agent_type: t ? { id: t.id, name: t.name, slug: t.slug } : null,
    kind: a.kind,
    llm_provider: a.llm_provider,
    llm_model: a.llm_model,
    llm_base_url: a.llm_base_url,
    has_llm_api_key: Boolean(a.llm_api_key_sealed),
    has_webhook_secret: Boolean(a.webhook_secret_sealed),
    system_prompt: a.system_prompt,
    can_clone_repos: a.can_clone_repos,
    can_create_prs: a.can_create_prs,
    max_iterations: a.max_iterations,
    timeout_minutes: a.timeout_minutes,
    rerun_interrupted_tools: a.rerun_interrupted_tools ?? false,
    approval: a.approval,
    webhook_url: a.webhook_url,
    public_key: a.public_key,
    sandbox: a.sandbox ?? {},
    script: a.script ?? null,
    project_role_id: a.project_role_id,
    member_id: a.member_id,
    created_at: a.created_at,
    updated_at: a.updated_at,
  };
}

export function serializeMcpServer(r: McpServerRow) {
  return {
    id: r.id, agent_id: r.agent_id, server_name: r.server_name, transport: r.transport, command: r.command,
    args: r.args ?? [],
    // values are write-only secrets: only their names come back
    env_keys: r.env_keys ?? [],
    url: r.url, is_enabled: r.is_enabled, created_at: r.created_at, updated_at: r.updated_at,
  };
}

export function serializeSkill(r: SkillRow) {
  return {
    id: r.id, agent_id: r.agent_id, skill_name: r.skill_name, skill_source: r.skill_source, skill_content: r.skill_content,
    source_url: r.source_url, description: r.description, triggers: r.triggers ?? [], is_enabled: r.is_enabled,
    created_at: r.created_at, updated_at: r.updated_at,
  };
}

export function serializeAgentType(r: AgentTypeRow) {
  return {
    id: r.id, project_id: r.project_id, name: r.name, slug: r.slug, description: r.description, built_in: r.project_id === null,
    default_system_prompt: r.default_system_prompt, default_image: r.default_image, tools: r.tools ?? [], created_at: r.created_at,
  };
}
