/**
 * What hangs off an agent: MCP servers (env values sealed, only their names shown), skills
 * (inline markdown with front matter, or fetched from a GitHub URL at creation) and agent types.
 */
import matter from 'gray-matter';
import { db } from '../db/knex.js';
import type { Principal } from '../http/auth.js';
import { badRequest, conflict, notFound, unprocessable } from '../domain/errors.js';
import { sealJson } from '../lib/secrets.js';
import { isUuid, requireProject } from './access.js';
import { requireAgent } from './agents.js';

// --- MCP servers ------------------------------------------------------------------------------

function checkMcp(s: { transport: string; command?: string | null; url?: string | null }) {
  if (s.transport === 'stdio' && !s.command) throw badRequest('An stdio MCP server needs a command');
  if (s.transport === 'http' && !s.url) throw badRequest('An http MCP server needs a url');
}

function mcpColumns(input: Record<string, any>) {
  const cols: Record<string, unknown> = {};
  for (const k of ['server_name', 'transport', 'command', 'url', 'is_enabled']) if (k in input) cols[k] = input[k];
  if ('args' in input) cols.args = JSON.stringify(input.args ?? []);
  if ('env' in input) {
    const env = (input.env ?? {}) as Record<string, string>;
    cols.env_sealed = Object.keys(env).length ? sealJson(env) : null;
    cols.env_keys = JSON.stringify(Object.keys(env));
  }
  return cols;
}

export async function addMcpServer(principal: Principal, projectId: string, agentRef: string, input: Record<string, any>) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  checkMcp(input as { transport: string });
  const dup = await db('agent_mcp_servers').where({ agent_id: a.id, server_name: input.server_name }).first('id');
  if (dup) throw conflict(`Agent already has an MCP server named "${input.server_name}"`);
  const [row] = await db('agent_mcp_servers').insert({ ...mcpColumns(input), agent_id: a.id }).returning('*');
  return serializeMcpServer(row);
}

async function requireMcp(agentId: string, serverId: string) {
  const row = isUuid(serverId) ? await db('agent_mcp_servers').where({ id: serverId, agent_id: agentId }).first() : null;
  if (!row) throw notFound('MCP server');
  return row;
}

export async function updateMcpServer(principal: Principal, projectId: string, agentRef: string, serverId: string, input: Record<string, any>) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireMcp(a.id, serverId);
  checkMcp({ transport: input.transport ?? row.transport, command: 'command' in input ? input.command : row.command, url: 'url' in input ? input.url : row.url });
  const [updated] = await db('agent_mcp_servers').where({ id: row.id }).update({ ...mcpColumns(input), updated_at: db.fn.now() }).returning('*');
  return serializeMcpServer(updated);
}

export async function deleteMcpServer(principal: Principal, projectId: string, agentRef: string, serverId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireMcp(a.id, serverId);
  await db('agent_mcp_servers').where({ id: row.id }).del();
  return { id: row.id, deleted: true };
}

export function serializeMcpServer(r: Record<string, any>) {
  return {
    id: r.id, agent_id: r.agent_id, server_name: r.server_name, transport: r.transport, command: r.command,
    args: r.args ?? [],
    // values are write-only secrets: only their names come back
    env_keys: r.env_keys ?? [],
    url: r.url, is_enabled: r.is_enabled, created_at: r.created_at, updated_at: r.updated_at,
  };
}

// --- Skills -----------------------------------------------------------------------------------

const SKILL_FETCH_TIMEOUT_MS = 5000;

/** github.com/<o>/<r>/blob/<ref>/<path> → raw.githubusercontent.com/<o>/<r>/<ref>/<path> */
export function rawGithubUrl(url: string): string {
  const m = /^https?:\/\/github\.com\/([^/]+)\/([^/]+)\/blob\/(.+)$/.exec(url);
  return m ? `https://raw.githubusercontent.com/${m[1]}/${m[2]}/${m[3]}` : url;
}

async function fetchSkill(url: string): Promise<string> {
  const target = rawGithubUrl(url);
  let res: Response;
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(SKILL_FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (err) {
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${SKILL_FETCH_TIMEOUT_MS / 1000}s` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
    throw unprocessable(`Could not fetch the skill from ${url}: ${why}. Check the URL, or send the markdown inline with skill_source "inline".`);
  }
  if (!res.ok) throw unprocessable(`Could not fetch the skill from ${url}: HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > 256 * 1024) throw unprocessable(`The skill at ${url} is larger than 256 KiB`);
  return text;
}

/** Front matter may carry name, description and triggers; explicit fields win. */
function parseSkill(content: string): { description?: string; triggers?: string[] } {
  try {
    const { data } = matter(content);
    const triggers = Array.isArray(data.triggers) ? data.triggers.map(String) : undefined;
    return { description: typeof data.description === 'string' ? data.description : undefined, triggers };
  } catch (err) {
    throw badRequest(`skill_content has invalid front matter: ${(err as Error).message}`);
  }
}

export async function addSkill(principal: Principal, projectId: string, agentRef: string, input: Record<string, any>) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const source = input.skill_source ?? 'inline';
  if (source === 'inline' && !input.skill_content) throw badRequest('An inline skill needs skill_content');
  if (source === 'github_url' && !input.source_url) throw badRequest('A github_url skill needs source_url');
  const content = source === 'github_url' ? await fetchSkill(input.source_url) : input.skill_content;
  const meta = parseSkill(content);
  const [row] = await db('agent_skills')
    .insert({
      agent_id: a.id,
      skill_name: input.skill_name,
      skill_source: source,
      skill_content: content,
      source_url: input.source_url ?? null,
      description: meta.description ?? null,
      triggers: JSON.stringify(input.triggers ?? meta.triggers ?? []),
      is_enabled: input.is_enabled ?? true,
    })
    .returning('*');
  return serializeSkill(row);
}

async function requireSkill(agentId: string, skillId: string) {
  const row = isUuid(skillId) ? await db('agent_skills').where({ id: skillId, agent_id: agentId }).first() : null;
  if (!row) throw notFound('Skill');
  return row;
}

export async function updateSkill(principal: Principal, projectId: string, agentRef: string, skillId: string, input: Record<string, any>) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireSkill(a.id, skillId);
  const cols: Record<string, unknown> = {};
  for (const k of ['skill_name', 'is_enabled']) if (k in input) cols[k] = input[k];
  if ('triggers' in input) cols.triggers = JSON.stringify(input.triggers);
  if ('skill_content' in input) {
    cols.skill_content = input.skill_content;
    cols.description = parseSkill(input.skill_content).description ?? null;
  }
  const [updated] = await db('agent_skills').where({ id: row.id }).update({ ...cols, updated_at: db.fn.now() }).returning('*');
  return serializeSkill(updated);
}

export async function deleteSkill(principal: Principal, projectId: string, agentRef: string, skillId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireSkill(a.id, skillId);
  await db('agent_skills').where({ id: row.id }).del();
  return { id: row.id, deleted: true };
}

export function serializeSkill(r: Record<string, any>) {
  return {
    id: r.id, agent_id: r.agent_id, skill_name: r.skill_name, skill_source: r.skill_source, skill_content: r.skill_content,
    source_url: r.source_url, description: r.description, triggers: r.triggers ?? [], is_enabled: r.is_enabled,
    created_at: r.created_at, updated_at: r.updated_at,
  };
}

// --- Agent types ------------------------------------------------------------------------------

export async function listAgentTypes(principal: Principal, projectId?: string) {
  if (projectId) await requireProject(principal, projectId, 'read');
  const rows = await db('agent_types')
    .where((w) => {
      w.whereNull('project_id');
      if (projectId) w.orWhere({ project_id: projectId });
    })
    .orderBy([{ column: 'project_id', order: 'desc', nulls: 'first' }, { column: 'name' }]);
  return rows.map(serializeAgentType);
}

export async function createAgentType(principal: Principal, projectId: string, input: Record<string, any>) {
  await requireProject(principal, projectId, 'write');
  const slug = input.slug ?? input.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const dup = await db('agent_types').where({ slug }).andWhere((w) => w.whereNull('project_id').orWhere({ project_id: projectId })).first('id');
  if (dup) throw conflict(`An agent type with slug "${slug}" already exists`);
  const [row] = await db('agent_types')
    .insert({
      project_id: projectId, name: input.name, slug, description: input.description ?? null,
      default_system_prompt: input.default_system_prompt ?? null, default_image: input.default_image ?? null,
      tools: JSON.stringify(input.tools ?? ['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish']),
    })
    .returning('*');
  return serializeAgentType(row);
}

export function serializeAgentType(r: Record<string, any>) {
  return {
    id: r.id, project_id: r.project_id, name: r.name, slug: r.slug, description: r.description, built_in: r.project_id === null,
    default_system_prompt: r.default_system_prompt, default_image: r.default_image, tools: r.tools ?? [], created_at: r.created_at,
  };
}
