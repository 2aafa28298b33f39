/**
 * Sandboxes (seed 002): a container that one or more sessions work in. Sessions created through
 * seed 001/004 routes or POST /api/v1/sessions get a sandbox of their own (owner_session_id).
 * This module holds the rules (defaults, visibility); the container itself belongs to a worker.
 */
import { config } from '../config.js';
import { db, type Db } from '../db/knex.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import type { SandboxLimits, SandboxRow } from '../db/repositories/sandboxes.js';
import { notFound } from '../domain/errors.js';
import { sealJson } from '../lib/secrets.js';
import { isUuid } from './access.js';
import type { AgentRow } from './agents.js';

export type { SandboxRow };

export interface SandboxInput {
  image?: string | null;
  env?: Record<string, string>;
  limits?: SandboxLimits;
  metadata?: Record<string, unknown>;
  timeout?: number | null;
}

/** Image: explicit > agent's sandbox settings > agent type default > TROUPE_DEFAULT_IMAGE. */
export async function sandboxDefaults(agent: AgentRow, conn: Db = db): Promise<{ image: string; limits: SandboxLimits }> {
  const s = (agent.sandbox ?? {}) as Record<string, any>;
  let image = s.image as string | undefined;
  if (!image && agent.agent_type_id) image = (await sandboxes.agentTypeImage(conn, agent.agent_type_id)) ?? undefined;
  const limits: SandboxLimits = {};
  if (s.memory_mb) limits.memory_mb = s.memory_mb;
  if (s.cpus) limits.cpus = s.cpus;
  if (s.network) limits.network = s.network;
  return { image: image || config.defaultImage, limits };
}

export async function insertSandbox(conn: Db, projectId: string, agent: AgentRow, input: SandboxInput, ownerSessionId?: string): Promise<SandboxRow> {
  const d = await sandboxDefaults(agent, conn);
  const env = input.env ?? {};
  return sandboxes.insert(conn, {
    ...(ownerSessionId ? { owner_session_id: ownerSessionId } : {}),
    project_id: projectId,
    agent_id: agent.id,
    image: input.image || d.image,
    env_sealed: Object.keys(env).length ? sealJson(env) : null,
    env_keys: Object.keys(env),
    limits: { ...d.limits, ...(input.limits ?? {}) },
    metadata: input.metadata ?? {},
    timeout_seconds: input.timeout ?? null,
  });
}

export async function getSandboxRow(projectIds: string[], id: string): Promise<SandboxRow> {
  const row = isUuid(id) ? await sandboxes.inProjects(projectIds, id) : undefined;
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

/** `agentId`: only that agent's (what an agent key may see). */
export async function listSandboxes(projectIds: string[], filter: { state?: sandboxes.SandboxState; agentId?: string } = {}): Promise<SandboxRow[]> {
  return sandboxes.list(projectIds, { ...filter, limit: 500 });
}
