/**
 * Agents (seed 004) and their API keys. An agent is also a project member (member_type 'agent').
 * Anywhere an agent is referenced, its id or its handle is accepted.
 */
import crypto from 'node:crypto';
import { db, type Db } from '../db/knex.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, notFound } from '../domain/errors.js';
import { hashApiKey, newApiKey, seal } from '../lib/secrets.js';
import { isUuid, requireProject } from './access.js';
import { serializeMcpServer, serializeSkill } from './agent-extras.js';
import { assertSandboxRequest } from './sandboxes.js';

export type AgentRow = Record<string, any>;

export async function findAgent(projectId: string, ref: string, conn: Db = db): Promise<AgentRow | null> {
  const q = conn('agents').where({ project_id: projectId }).whereNull('deleted_at');
  return (await (isUuid(ref) ? q.andWhere((w) => w.where({ id: ref }).orWhere({ handle: ref })) : q.andWhere({ handle: ref })).first()) ?? null;
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
  const q = db('agent_types').where((w) => w.whereNull('project_id').orWhere({ project_id: projectId }));
  const row = await (isUuid(ref) ? q.andWhere({ id: ref }) : q.andWhere({ slug: ref })).first('id');
  if (!row) throw badRequest(`Unknown agent_type_id "${ref}": list types with GET /api/v1/agent-types?project_id=${projectId}`);
  return row.id;
}

/** Maps API input to columns; secrets are sealed, never stored in the clear. */
function toColumns(input: Record<string, any>): Record<string, unknown> {
  const cols: Record<string, unknown> = {};
  const plain = [
    'name', 'handle', 'avatar_url', 'kind', 'llm_provider', 'llm_model', 'llm_base_url', 'system_prompt',
    'can_clone_repos', 'can_create_prs', 'max_iterations', 'timeout_minutes', 'approval', 'webhook_url',
    'public_key', 'project_role_id',
  ];
  for (const k of plain) if (k in input) cols[k] = input[k];
  if ('sandbox' in input) cols.sandbox = JSON.stringify(input.sandbox ?? {});
  if ('script' in input) cols.script = input.script === null ? null : JSON.stringify(input.script);
  if ('llm_api_key' in input) cols.llm_api_key_sealed = input.llm_api_key ? seal(input.llm_api_key) : null;
  return cols;
}

/** Rotates the agent's webhook signing secret; the response is the only time it is shown. */
export async function rotateWebhookSecret(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  const secret = `whsec_${crypto.randomBytes(24).toString('base64url')}`;
  await db('agents').where({ id: a.id }).update({ webhook_secret_sealed: seal(secret), updated_at: db.fn.now() });
  return { secret, header: 'X-Troupe-Signature', scheme: 'sha256=HMAC_SHA256(secret, "<X-Troupe-Timestamp>.<raw body>")' };
}

export async function listWebhookDeliveries(principal: Principal, projectId: string, ref: string, limit: number, offset: number) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const rows = await db('webhook_deliveries').where({ agent_id: a.id }).orderBy('created_at', 'desc').limit(limit).offset(offset);
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

export async function createAgent(principal: Principal, projectId: string, input: Record<string, any>) {
  const m = await requireProject(principal, projectId, 'write');
  checkProvider(input);
  if (input.sandbox) assertSandboxRequest(m.role, input.sandbox);
  const agentTypeId = await resolveAgentType(projectId, input.agent_type_id);
  const handle = input.handle ?? slugify(input.name);
  if (await findAgent(projectId, handle)) throw conflict(`An agent with handle "${handle}" already exists in this project`);
  const id = await db.transaction(async (tx) => {
    const [agent] = await tx('agents')
      .insert({ ...toColumns({ ...input, handle }), project_id: projectId, agent_type_id: agentTypeId })
      .returning('id');
    const [member] = await tx('project_members')
      .insert({ project_id: projectId, member_type: 'agent', agent_id: agent.id, role: 'member' })
      .returning('id');
    await tx('agents').where({ id: agent.id }).update({ member_id: member.id });
    return agent.id as string;
  }).catch((err) => {
    if (err.code === '23505') throw conflict(`An agent with handle "${handle}" already exists in this project`);
    throw err;
  });
  return getAgent(principal, projectId, id);
}

export async function listAgents(principal: Principal, projectId: string) {
  await requireProject(principal, projectId, 'read');
  const rows = await db('agents').where({ project_id: projectId }).whereNull('deleted_at').orderBy('created_at');
  const types = await typesById(rows.map((r) => r.agent_type_id));
  return rows.map((r) => serializeAgent(r, types));
}

export async function getAgent(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const [mcp, skills, types] = await Promise.all([
    db('agent_mcp_servers').where({ agent_id: a.id }).orderBy('created_at'),
    db('agent_skills').where({ agent_id: a.id }).orderBy('created_at'),
    typesById([a.agent_type_id]),
  ]);
  return { ...serializeAgent(a, types), mcp_servers: mcp.map(serializeMcpServer), skills: skills.map(serializeSkill) };
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
export async function updateAgent(principal: Principal, projectId: string, ref: string, input: Record<string, any>) {
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
    const cur = await tx('agents').where({ id: a.id }).forUpdate().first('llm_provider', 'llm_base_url', 'llm_api_key_sealed');
    const destinationChanged = ('llm_base_url' in input && !sameUrl(input.llm_base_url, cur.llm_base_url))
      || ('llm_provider' in input && input.llm_provider !== cur.llm_provider);
    const cleared: string[] = [];
    if (destinationChanged && !('llm_api_key' in input) && cur.llm_api_key_sealed) {
      cols.llm_api_key_sealed = null;
      cleared.push('llm_api_key');
    }
    await tx('agents').where({ id: a.id }).update({ ...cols, updated_at: tx.fn.now() });
    return cleared;
  });
  return { ...(await getAgent(principal, projectId, a.id)), secrets_cleared: secretsCleared };
}

/** Soft-deletes the agent and its member row; its running sessions are stopped by the caller. */
export async function deleteAgent(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  await db.transaction(async (tx) => {
    await tx('agents').where({ id: a.id }).update({ deleted_at: tx.fn.now() });
    if (a.member_id) await tx('project_members').where({ id: a.member_id }).update({ deleted_at: tx.fn.now() });
    await tx('agent_api_keys').where({ agent_id: a.id }).whereNull('revoked_at').update({ revoked_at: tx.fn.now() });
  });
  return a;
}

async function typesById(ids: Array<string | null>): Promise<Map<string, AgentRow>> {
  const wanted = [...new Set(ids.filter(Boolean))] as string[];
  const rows = wanted.length ? await db('agent_types').whereIn('id', wanted) : [];
  return new Map(rows.map((r) => [r.id, r]));
}

export function serializeAgent(a: AgentRow, types: Map<string, AgentRow>) {
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

// --- API keys -------------------------------------------------------------------------------------

export async function createApiKey(principal: Principal, projectId: string, ref: string, input: { name?: string }) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  const key = newApiKey();
  const [row] = await db('agent_api_keys')
    .insert({ agent_id: a.id, project_id: projectId, key_hash: hashApiKey(key), key_prefix: key.slice(0, 8), name: input.name ?? null })
    .returning('*');
  // The only time the key is ever shown.
  return { id: row.id, key, name: row.name, key_prefix: row.key_prefix, created_at: row.created_at };
}

export async function listApiKeys(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'read');
  const a = await requireAgent(projectId, ref);
  const rows = await db('agent_api_keys').where({ agent_id: a.id }).orderBy('created_at');
  return rows.map((r) => ({ id: r.id, name: r.name, key_prefix: r.key_prefix, created_at: r.created_at, last_used_at: r.last_used_at, revoked_at: r.revoked_at }));
}

export async function revokeApiKey(principal: Principal, projectId: string, ref: string, keyId: string) {
  await requireProject(principal, projectId, 'write');
  const a = await requireAgent(projectId, ref);
  if (!isUuid(keyId)) throw notFound('API key');
  const [row] = await db('agent_api_keys').where({ id: keyId, agent_id: a.id }).update({ revoked_at: db.raw('coalesce(revoked_at, now())') }).returning('*');
  if (!row) throw notFound('API key');
  return { id: row.id, revoked_at: row.revoked_at };
}
