/**
 * Agents (seed 004) and their API keys. An agent is also a project member (member_type 'agent').
 * Anywhere an agent is referenced, its id or its handle is accepted.
 */
import crypto from 'node:crypto';
import { db, type Db } from '../db/knex.js';
import * as agents from '../db/repositories/agents.js';
import type { AgentChanges, AgentKind, AgentRow } from '../db/repositories/agents.js';
import * as apiKeys from '../db/repositories/agent-api-keys.js';
import * as agentTypes from '../db/repositories/agent-types.js';
import type { AgentTypeRow } from '../db/repositories/agent-types.js';
import * as mcpServers from '../db/repositories/agent-mcp-servers.js';
import * as skills from '../db/repositories/agent-skills.js';
import * as projects from '../db/repositories/projects.js';
import * as webhookDeliveries from '../db/repositories/webhook-deliveries.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { hashApiKey, newApiKey, seal } from '../lib/secrets.js';
import { isUuid, requireProject } from './access.js';
import { serializeAgent, serializeMcpServer, serializeSkill } from './agent-views.js';
import { assertSandboxRequest } from './sandboxes.js';

export type { AgentRow };

/** An agent as the API takes it (routes/agents.ts validates it against the same fields). */
export interface AgentInput {
  name?: string;
  handle?: string;
  avatar_url?: string | null;
  agent_type_id?: string | null;
  kind?: AgentKind;
  llm_provider?: string;
  llm_model?: string | null;
  llm_base_url?: string | null;
  /** Write-only: sealed at once, never returned. */
  llm_api_key?: string | null;
  system_prompt?: string | null;
  can_clone_repos?: boolean;
  can_create_prs?: boolean;
  max_iterations?: number;
  timeout_minutes?: number;
  rerun_interrupted_tools?: boolean;
  approval?: 'auto' | 'require';
  webhook_url?: string | null;
  public_key?: string | null;
  sandbox?: Record<string, unknown> | null;
  script?: unknown;
  project_role_id?: string | null;
}

export async function findAgent(projectId: string, ref: string, conn: Db = db): Promise<AgentRow | null> {
  return (await agents.liveInProject(projectId, isUuid(ref) ? { idOrHandle: ref } : { handle: ref }, conn)) ?? null;
}

export async function requireAgent(projectId: string, ref: string, conn: Db = db): Promise<AgentRow> {
  const a = await findAgent(projectId, ref, conn);
  if (!a) throw notFound('Agent');
  return a;
}

function slugify(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'agent';
}

async function resolveAgentType(projectId: string, ref: string | null | undefined): Promise<string | null> {
  if (!ref) return null;
  const id = await agentTypes.visibleTo(projectId, isUuid(ref) ? { id: ref } : { slug: ref });
  if (!id) throw badRequest(`Unknown agent_type_id "${ref}": list types with GET /api/v1/agent-types?project_id=${projectId}`);
  return id;
}

/** Maps API input to columns; secrets are sealed, never stored in the clear. */
function toColumns(input: AgentInput): AgentChanges {
  const cols: Record<string, unknown> = {};
  const plain: Array<keyof AgentInput & keyof AgentChanges> = [
    'name', 'handle', 'avatar_url', 'kind', 'llm_provider', 'llm_model', 'llm_base_url', 'system_prompt',
    'can_clone_repos', 'can_create_prs', 'max_iterations', 'timeout_minutes', 'rerun_interrupted_tools', 'approval', 'webhook_url',
    'public_key', 'project_role_id',
  ];
  for (const k of plain) if (k in input) cols[k] = input[k];
  if ('sandbox' in input) cols.sandbox = input.sandbox ?? {};
  if ('script' in input) cols.script = input.script;
  if ('llm_api_key' in input) cols.llm_api_key_sealed = input.llm_api_key ? seal(input.llm_api_key) : null;
  return cols as AgentChanges;
}

/** Rotates the agent's webhook signing secret; the response is the only time it is shown. */
export async function rotateWebhookSecret(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  const secret = `whsec_${crypto.randomBytes(24).toString('base64url')}`;
  await agents.update(a.id, { webhook_secret_sealed: seal(secret) });
  return { secret, header: 'X-Troupe-Signature', scheme: 'sha256=HMAC_SHA256(secret, "<X-Troupe-Timestamp>.<raw body>")' };
}

export async function listWebhookDeliveries(principal: Principal, projectId: string, ref: string, limit: number, offset: number) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const rows = await webhookDeliveries.ofAgent(a.id, limit, offset);
  return {
    deliveries: rows.map((r) => ({
      id: r.id, agent_event_id: String(r.agent_event_id), event_type: r.event_type, url: r.url, attempt: r.attempt,
      status_code: r.status_code, error: r.error, duration_ms: r.duration_ms, succeeded: r.succeeded, created_at: r.created_at,
    })),
  };
}

function checkProvider(a: { llm_provider?: string; llm_base_url?: string | null }) {
  if (a.llm_base_url && a.llm_provider === 'scripted') throw badRequest('llm_base_url is only used with llm_provider anthropic or openai');
}

export async function createAgent(principal: Principal, projectId: string, input: AgentInput & { name: string }) {
  const m = await requireProject(principal, projectId, 'write');
  checkProvider(input);
  if (input.sandbox) assertSandboxRequest(m.role, input.sandbox);
  const agentTypeId = await resolveAgentType(projectId, input.agent_type_id);
  const handle = input.handle ?? slugify(input.name);
  if (await findAgent(projectId, handle)) throw conflict(`An agent with handle "${handle}" already exists in this project`);
  const id = await db.transaction(async (tx) => {
    const agentId = await agents.insert({ ...toColumns({ ...input, handle }), name: input.name, handle, project_id: projectId, agent_type_id: agentTypeId }, tx);
    const memberId = await projects.insertAgentMember(projectId, agentId, tx);
    await agents.setMember(agentId, memberId, tx);
    return agentId;
  }).catch((err) => {
    if (err.code === '23505') throw conflict(`An agent with handle "${handle}" already exists in this project`);
    throw err;
  });
  return getAgent(principal, projectId, id);
}

export async function listAgents(principal: Principal, projectId: string) {
  await requireProject(principal, projectId, 'read');
  const rows = await agents.liveOfProject(projectId);
  const types = await typesById(rows.map((r) => r.agent_type_id));
  return rows.map((r) => serializeAgent(r, types));
}

export async function getAgent(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const [mcp, skillRows, types] = await Promise.all([
    mcpServers.ofAgent(a.id),
    skills.ofAgent(a.id),
    typesById([a.agent_type_id]),
  ]);
  return { ...serializeAgent(a, types), mcp_servers: mcp.map(serializeMcpServer), skills: skillRows.map(serializeSkill) };
}

/** Two URLs name the same destination (null = the provider's default endpoint). */
export function sameUrl(a: string | null | undefined, b: string | null | undefined): boolean {
  const norm = (u: string | null | undefined) => {
    if (!u) return null;
    try {
      return new URL(u).href;
    } catch {
      return u;
    }
  };
  return norm(a) === norm(b);
}

/**
 * Changing where the model key goes (llm_base_url, or llm_provider and with it the default
 * endpoint) clears the stored key unless the same request supplies one: a member who can edit the
 * agent must not be able to send the key someone else stored to a server of their choosing.
 * The response lists what was cleared in `secrets_cleared`.
 */
export async function updateAgent(principal: Principal, projectId: string, ref: string, input: AgentInput) {
  const m = await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  // Keeping a bridge an admin granted is not a new grant; turning one on is.
  if (input.sandbox) assertSandboxRequest(m.role, input.sandbox, { alreadyBridge: a.sandbox?.network === 'bridge' });
  checkProvider({ llm_provider: input.llm_provider ?? a.llm_provider, llm_base_url: 'llm_base_url' in input ? input.llm_base_url : a.llm_base_url });
  const cols = toColumns(input);
  if ('agent_type_id' in input) cols.agent_type_id = await resolveAgentType(projectId, input.agent_type_id);
  if (input.handle && input.handle !== a.handle) {
    const other = await findAgent(projectId, input.handle);
    if (other && other.id !== a.id) throw conflict(`An agent with handle "${input.handle}" already exists in this project`);
  }
  const secretsCleared = await db.transaction(async (tx) => {
    // Decide on the row as it is now, so a concurrent change of destination cannot slip between.
    const cur = (await agents.destinationForUpdate(a.id, tx))!;
    const destinationChanged = ('llm_base_url' in input && !sameUrl(input.llm_base_url, cur.llm_base_url))
      || ('llm_provider' in input && input.llm_provider !== cur.llm_provider);
    const cleared: string[] = [];
    if (destinationChanged && !('llm_api_key' in input) && cur.llm_api_key_sealed) {
      cols.llm_api_key_sealed = null;
      cleared.push('llm_api_key');
    }
    await agents.update(a.id, cols, tx);
    return cleared;
  });
  return { ...(await getAgent(principal, projectId, a.id)), secrets_cleared: secretsCleared };
}

/** Soft-deletes the agent and its member row; its running sessions are stopped by the caller. */
export async function deleteAgent(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  await db.transaction(async (tx) => {
    await agents.softDelete(a.id, tx);
    if (a.member_id) await projects.removeMember(a.member_id, tx);
    await apiKeys.revokeAllOfAgent(a.id, tx);
  });
  return a;
}

async function typesById(ids: Array<string | null>): Promise<Map<string, AgentTypeRow>> {
  const wanted = [...new Set(ids.filter(Boolean))] as string[];
  const rows = wanted.length ? await agentTypes.byIds(wanted) : [];
  return new Map(rows.map((r) => [r.id, r]));
}

// --- API keys -------------------------------------------------------------------------------------

export async function createApiKey(principal: Principal, projectId: string, ref: string, input: { name?: string | null }) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  const key = newApiKey();
  const row = await apiKeys.insert({ agent_id: a.id, project_id: projectId, key_hash: hashApiKey(key), key_prefix: key.slice(0, 8), name: input.name ?? null });
  // The only time the key is ever shown.
  return { id: row.id, key, name: row.name, key_prefix: row.key_prefix, created_at: row.created_at };
}

export async function listApiKeys(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const rows = await apiKeys.ofAgent(a.id);
  return rows.map((r) => ({ id: r.id, name: r.name, key_prefix: r.key_prefix, created_at: r.created_at, last_used_at: r.last_used_at, revoked_at: r.revoked_at }));
}

export async function revokeApiKey(principal: Principal, projectId: string, ref: string, keyId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  if (!isUuid(keyId)) throw notFound('API key');
  const row = await apiKeys.revoke(keyId, a.id);
  if (!row) throw notFound('API key');
  return { id: row.id, revoked_at: row.revoked_at };
}
