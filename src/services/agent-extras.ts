/**
 * What hangs off an agent: MCP servers (env values sealed, only their names shown), skills
 * (inline markdown with front matter, or fetched from a GitHub URL at creation) and agent types.
 */
import matter from 'gray-matter';
import { config } from '../config.js';
import { db } from '../db/knex.js';
import * as agentTypes from '../db/repositories/agent-types.js';
import * as mcpServers from '../db/repositories/agent-mcp-servers.js';
import type { McpServerChanges, McpServerRow, McpTransport } from '../db/repositories/agent-mcp-servers.js';
import * as skills from '../db/repositories/agent-skills.js';
import type { SkillChanges, SkillSource } from '../db/repositories/agent-skills.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound, unprocessable } from '../domain/errors.js';
import { outbound, type OutboundGuard } from '../lib/outbound.js';
import { sealJson } from '../lib/secrets.js';
import { log } from '../log.js';
import { isUuid, requireProject } from './access.js';
import { requireAgent, sameUrl } from './agents.js';
import { assertImageAllowed } from './sandboxes.js';
import { serializeAgentType, serializeMcpServer, serializeSkill } from './agent-views.js';

/** An MCP server as the API takes it (the env is write-only: sealed at once, only its names kept). */
export interface McpServerInput {
  server_name?: string;
  transport?: McpTransport;
  command?: string | null;
  args?: string[];
  env?: Record<string, string> | null;
  url?: string | null;
  is_enabled?: boolean;
}

export interface SkillInput {
  skill_name?: string;
  skill_source?: SkillSource;
  skill_content?: string;
  source_url?: string;
  triggers?: string[];
  is_enabled?: boolean;
}

export interface AgentTypeInput {
  name: string;
  slug?: string;
  description?: string | null;
  default_system_prompt?: string | null;
  default_image?: string | null;
  tools?: string[];
}

// --- MCP servers ------------------------------------------------------------------------------

function checkMcp(s: { transport: string; command?: string | null; url?: string | null }) {
  if (s.transport === 'stdio' && !s.command) throw badRequest('An stdio MCP server needs a command');
  if (s.transport === 'http' && !s.url) throw badRequest('An http MCP server needs a url');
}

function mcpColumns(input: McpServerInput): McpServerChanges {
  const cols: Record<string, unknown> = {};
  for (const k of ['server_name', 'transport', 'command', 'url', 'is_enabled'] as const) if (k in input) cols[k] = input[k];
  if ('args' in input) cols.args = input.args ?? [];
  if ('env' in input) {
    const env = input.env ?? {};
    cols.env_sealed = Object.keys(env).length ? sealJson(env) : null;
    cols.env_keys = Object.keys(env);
  }
  return cols as McpServerChanges;
}

export async function addMcpServer(principal: Principal, projectId: string, agentRef: string, input: McpServerInput & { server_name: string; transport: McpTransport }) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  checkMcp(input);
  if (await mcpServers.nameTaken(a.id, input.server_name)) throw conflict(`Agent already has an MCP server named "${input.server_name}"`);
  const row = await mcpServers.insert({ ...mcpColumns(input), agent_id: a.id });
  return serializeMcpServer(row);
}

async function requireMcp(agentId: string, serverId: string): Promise<McpServerRow> {
  const row = isUuid(serverId) ? await mcpServers.byIdOfAgent(agentId, serverId) : null;
  if (!row) throw notFound('MCP server');
  return row;
}

/** Whether a change sends the server's env somewhere else: another url, command, args or transport. */
function mcpDestinationChanged(row: McpServerRow, input: McpServerInput): boolean {
  return ('transport' in input && input.transport !== row.transport)
    || ('url' in input && !sameUrl(input.url, row.url))
    || ('command' in input && (input.command ?? null) !== (row.command ?? null))
    || ('args' in input && JSON.stringify(input.args ?? []) !== JSON.stringify(row.args ?? []));
}

/**
 * Changing where the env goes (url, command, args, transport) clears the stored env unless the
 * same request supplies it again, so a member cannot redirect secrets someone else stored; the
 * response lists what was cleared in `secrets_cleared`.
 */
export async function updateMcpServer(principal: Principal, projectId: string, agentRef: string, serverId: string, input: McpServerInput) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const found = await requireMcp(a.id, serverId);
  checkMcp({ transport: input.transport ?? found.transport, command: 'command' in input ? input.command : found.command, url: 'url' in input ? input.url : found.url });
  const { updated, cleared } = await db.transaction(async (tx) => {
    const row = await mcpServers.byIdForUpdate(found.id, tx);
    const cols = mcpColumns(input);
    const cleared: string[] = [];
    if (mcpDestinationChanged(row, input) && !('env' in input) && row.env_sealed) {
      cols.env_sealed = null;
      cols.env_keys = [];
      cleared.push('env');
    }
    const updated = await mcpServers.update(row.id, cols, tx);
    return { updated, cleared };
  });
  return { ...serializeMcpServer(updated), secrets_cleared: cleared };
}

export async function deleteMcpServer(principal: Principal, projectId: string, agentRef: string, serverId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireMcp(a.id, serverId);
  await mcpServers.remove(row.id);
  return { id: row.id, deleted: true };
}

// --- Skills -----------------------------------------------------------------------------------

const SKILL_FETCH_TIMEOUT_MS = 5000;
const SKILL_MAX_BYTES = 256 * 1024;
const SKILL_MAX_REDIRECTS = 3;
/**
 * The one answer to every failed fetch, whatever went wrong (refused connection, unknown name,
 * blocked address, HTTP error, too large, too slow): anything more specific would let a member
 * map the network the server sits in. The reason goes to the log.
 */
export const SKILL_FETCH_ERROR =
  'Could not fetch the skill from source_url: it must be a public markdown file of at most 256 KiB on an allowed host. ' +
  'Check the URL, or send the markdown inline with skill_source "inline".';

/** github.com/<o>/<r>/blob/<ref>/<path> → raw.githubusercontent.com/<o>/<r>/<ref>/<path> */
export function rawGithubUrl(url: string): string {
  const m = /^https?:\/\/github\.com\/([^/]+)\/([^/]+)\/blob\/(.+)$/.exec(url);
  return m ? `https://raw.githubusercontent.com/${m[1]}/${m[2]}/${m[3]}` : url;
}

const skillHostAllowed = (u: URL, hosts: readonly string[]) =>
  (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && hosts.includes(u.hostname.toLowerCase());

/**
 * Fetches a skill's markdown: only from TROUPE_SKILL_HOSTS (github.com, raw.githubusercontent.com
 * by default), through the outbound guard, following at most 3 redirects and only to those hosts,
 * reading at most 256 KiB.
 */
export async function fetchSkill(url: string, opts: { guard?: OutboundGuard; hosts?: string[] } = {}): Promise<string> {
  const hosts = opts.hosts ?? config.skillHosts;
  let start: URL;
  try {
    start = new URL(rawGithubUrl(url));
  } catch {
    throw badRequest('source_url is not a valid URL');
  }
  // Decided from the URL alone, before any request: says nothing about the network.
  if (!skillHostAllowed(start, hosts)) throw badRequest(`source_url must be an http(s) URL on ${hosts.join(', ')}`);
  try {
    return await fetchSkillFrom(start, hosts, opts.guard ?? outbound());
  } catch (err) {
    const e = err as Error & { cause?: Error & { cause?: Error } };
    log.warn({ source_url: url, reason: e.message, cause: e.cause?.message, cause2: e.cause?.cause?.message }, 'skill fetch failed');
    throw unprocessable(SKILL_FETCH_ERROR);
  }
}

async function fetchSkillFrom(start: URL, hosts: readonly string[], guard: OutboundGuard): Promise<string> {
  const signal = AbortSignal.timeout(SKILL_FETCH_TIMEOUT_MS);
  const fetchFn = guard.fetch('skill');
  let target = start;
  for (let hop = 0; ; hop++) {
    const res = await fetchFn(target, { signal, redirect: 'manual', headers: { 'user-agent': 'Troupe-Skills/1', accept: 'text/markdown, text/plain, */*' } });
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => {});
      if (hop >= SKILL_MAX_REDIRECTS) throw new Error(`more than ${SKILL_MAX_REDIRECTS} redirects`);
      const next = new URL(location, target);
      if (!skillHostAllowed(next, hosts)) throw new Error(`redirect to ${next.protocol}//${next.host}, not an allowed skill host`);
      target = next;
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`HTTP ${res.status} from ${target.host}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > SKILL_MAX_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`larger than ${SKILL_MAX_BYTES} bytes (content-length)`);
    }
    // Streamed with a cap: a server that lies about (or omits) its length is cut off.
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > SKILL_MAX_BYTES) {
        await reader.cancel().catch(() => {});
        throw new Error(`larger than ${SKILL_MAX_BYTES} bytes`);
      }
      chunks.push(value);
    }
    return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
  }
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

export async function addSkill(principal: Principal, projectId: string, agentRef: string, input: SkillInput & { skill_name: string }) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const source = input.skill_source ?? 'inline';
  if (source === 'inline' && !input.skill_content) throw badRequest('An inline skill needs skill_content');
  if (source === 'github_url' && !input.source_url) throw badRequest('A github_url skill needs source_url');
  const content = source === 'github_url' ? await fetchSkill(input.source_url!) : input.skill_content!;
  const meta = parseSkill(content);
  const row = await skills.insert({
    agent_id: a.id,
    skill_name: input.skill_name,
    skill_source: source,
    skill_content: content,
    source_url: input.source_url ?? null,
    description: meta.description ?? null,
    triggers: input.triggers ?? meta.triggers ?? [],
    is_enabled: input.is_enabled ?? true,
  });
  return serializeSkill(row);
}

async function requireSkill(agentId: string, skillId: string) {
  const row = isUuid(skillId) ? await skills.byIdOfAgent(agentId, skillId) : null;
  if (!row) throw notFound('Skill');
  return row;
}

export async function updateSkill(principal: Principal, projectId: string, agentRef: string, skillId: string, input: SkillInput) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireSkill(a.id, skillId);
  const cols: SkillChanges = {};
  if ('skill_name' in input) cols.skill_name = input.skill_name;
  if ('is_enabled' in input) cols.is_enabled = input.is_enabled;
  if ('triggers' in input) cols.triggers = input.triggers;
  if ('skill_content' in input) {
    cols.skill_content = input.skill_content;
    cols.description = parseSkill(input.skill_content!).description ?? null;
  }
  const updated = await skills.update(row.id, cols);
  return serializeSkill(updated);
}

export async function deleteSkill(principal: Principal, projectId: string, agentRef: string, skillId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, agentRef);
  const row = await requireSkill(a.id, skillId);
  await skills.remove(row.id);
  return { id: row.id, deleted: true };
}

// --- Agent types ------------------------------------------------------------------------------

export async function listAgentTypes(principal: Principal, projectId?: string) {
  if (projectId) await requireProject(principal, projectId, 'read');
  const rows = await agentTypes.listVisible(projectId);
  return rows.map(serializeAgentType);
}

export async function createAgentType(principal: Principal, projectId: string, input: AgentTypeInput) {
  await requireProject(principal, projectId, 'write');
  if (input.default_image) assertImageAllowed(input.default_image, 'default_image');
  const slug = input.slug ?? input.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  if (await agentTypes.slugTaken(projectId, slug)) throw conflict(`An agent type with slug "${slug}" already exists`);
  const row = await agentTypes.insert({
    project_id: projectId, name: input.name, slug, description: input.description ?? null,
    default_system_prompt: input.default_system_prompt ?? null, default_image: input.default_image ?? null,
    tools: input.tools ?? ['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish'],
  });
  return serializeAgentType(row);
}

