/**
 * Sandboxes (seed 002): a container that one or more sessions work in. Sessions created through
 * seed 001/004 routes or POST /api/v1/sessions get a sandbox of their own (owner_session_id).
 */
import { config } from '../config.js';
import { db, type Db } from '../db/knex.js';
import { notFound } from '../domain/errors.js';
import { sealJson, unsealJson } from '../lib/secrets.js';
import { sandboxDriver } from '../runtime/sandbox/index.js';
import type { SandboxSpec } from '../runtime/sandbox/driver.js';
import { isUuid } from './access.js';
import type { AgentRow } from './agents.js';

export type SandboxRow = Record<string, any>;

export interface SandboxInput {
  image?: string | null;
  env?: Record<string, string>;
  limits?: { memory_mb?: number; cpus?: number; pids?: number; network?: 'none' | 'bridge' };
  metadata?: Record<string, unknown>;
  timeout?: number | null;
}

/** Image: explicit > agent's sandbox settings > agent type default > TROUPE_DEFAULT_IMAGE. */
export async function sandboxDefaults(agent: AgentRow, conn: Db = db): Promise<{ image: string; limits: Record<string, unknown> }> {
  const s = (agent.sandbox ?? {}) as Record<string, any>;
  let image = s.image as string | undefined;
  if (!image && agent.agent_type_id) {
    const t = await conn('agent_types').where({ id: agent.agent_type_id }).first('default_image');
    image = t?.default_image ?? undefined;
  }
  const limits: Record<string, unknown> = {};
  if (s.memory_mb) limits.memory_mb = s.memory_mb;
  if (s.cpus) limits.cpus = s.cpus;
  if (s.network) limits.network = s.network;
  return { image: image || config.defaultImage, limits };
}

export async function insertSandbox(conn: Db, projectId: string, agent: AgentRow, input: SandboxInput, ownerSessionId?: string): Promise<SandboxRow> {
  const d = await sandboxDefaults(agent, conn);
  const env = input.env ?? {};
  const [row] = await conn('sandboxes')
    .insert({
      ...(ownerSessionId ? { owner_session_id: ownerSessionId } : {}),
      project_id: projectId,
      agent_id: agent.id,
      image: input.image || d.image,
      env_sealed: Object.keys(env).length ? sealJson(env) : null,
      env_keys: JSON.stringify(Object.keys(env)),
      limits: JSON.stringify({ ...d.limits, ...(input.limits ?? {}) }),
      metadata: JSON.stringify(input.metadata ?? {}),
      timeout_seconds: input.timeout ?? null,
    })
    .returning('*');
  return row;
}

export function specFor(sb: SandboxRow, sessionId?: string): SandboxSpec {
  const limits = (sb.limits ?? {}) as Record<string, any>;
  return {
    sandboxId: sb.id,
    projectId: sb.project_id,
    sessionId: sb.owner_session_id ?? sessionId,
    image: sb.image,
    env: unsealJson<Record<string, string>>(sb.env_sealed, {}),
    memoryMb: limits.memory_mb ?? config.sandboxMemoryMb,
    cpus: limits.cpus ?? config.sandboxCpus,
    pidsLimit: limits.pids ?? config.sandboxPidsLimit,
    network: limits.network === 'bridge' ? 'bridge' : 'none',
  };
}

/** What a sandbox with nothing but defaults looks like (the shape the warm pool keeps ready). */
export function defaultSandboxSpec(): SandboxSpec {
  return specFor({ id: 'default', project_id: 'default', image: config.defaultImage, env_sealed: null, limits: {} });
}

/**
 * Creates (or finds) the sandbox's container and records its id. `wake`: a worker about to use the
 * container unpauses it if it is frozen (an exec started in a paused container wedges Docker 20.10);
 * a resume that is still unpausing it on the api side may race this, harmlessly.
 */
export async function ensureContainer(sb: SandboxRow, sessionId?: string, opts: { wake?: boolean } = {}): Promise<string> {
  const info = await sandboxDriver().ensure(specFor(sb, sessionId));
  if (opts.wake && info.state === 'paused') {
    await sandboxDriver().unpause(info.id);
    await db('sandboxes').where({ id: sb.id }).update({ state: 'active', updated_at: db.fn.now() });
  }
  if (sb.container_id !== info.id) {
    await db('sandboxes').where({ id: sb.id }).update({ container_id: info.id, updated_at: db.fn.now() });
    sb.container_id = info.id;
  }
  return info.id;
}

export async function getSandboxRow(projectIds: string[], id: string): Promise<SandboxRow> {
  const row = isUuid(id) ? await db('sandboxes').where({ id }).whereIn('project_id', projectIds).first() : null;
  if (!row) throw notFound('Sandbox');
  return row;
}

export function serializeSandbox(sb: SandboxRow) {
  return {
    id: sb.id,
    project_id: sb.project_id,
    agent_id: sb.agent_id,
    image: sb.image,
    state: sb.state,
    env_keys: sb.env_keys ?? [],
    limits: sb.limits ?? {},
    metadata: sb.metadata ?? {},
    timeout: sb.timeout_seconds,
    container_id: sb.container_id,
    created_at: sb.created_at,
    updated_at: sb.updated_at,
  };
}
