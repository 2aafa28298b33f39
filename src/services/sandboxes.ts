/**
 * Sandboxes (seed 002): a container that one or more sessions work in. Sessions created through
 * seed 001/004 routes or POST /api/v1/sessions get a sandbox of their own (owner_session_id).
 * This module holds the rules (defaults, visibility); the container itself belongs to a worker.
 */
import { config } from '../config.js';
import { db, type Db, type Tx } from '../db/knex.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import type { SandboxLimits, SandboxRow } from '../db/repositories/sandboxes.js';
import { badRequest, forbidden, notFound } from '../domain/errors.js';
import { ceilingViolations, clampToCeilings, imageAllowed, type Ceilings } from '../lib/sandbox-policy.js';
import { sealJson } from '../lib/secrets.js';
import { isUuid, type Role } from './access.js';
import type { AgentRow } from '../db/repositories/agents.js';
import { assertSandboxQuota } from './quotas.js';

export type { SandboxRow };

export interface SandboxInput {
  image?: string | null;
  env?: Record<string, string>;
  limits?: SandboxLimits;
  metadata?: Record<string, unknown>;
  timeout?: number | null;
}

const ceilings = (): Ceilings => ({ memoryMb: config.sandboxMaxMemoryMb, cpus: config.sandboxMaxCpus, pids: config.sandboxMaxPids });

/** 400 naming the allowed images unless `image` is on TROUPE_ALLOWED_IMAGES. */
export function assertImageAllowed(image: string, field = 'image'): void {
  if (!imageAllowed(image, config.allowedImages)) {
    throw badRequest(`${field} "${image}" is not allowed on this deployment; allowed images: ${config.allowedImages.join(', ')} (TROUPE_ALLOWED_IMAGES)`);
  }
}

export interface SandboxRequest {
  image?: string | null;
  memory_mb?: number;
  cpus?: number;
  pids?: number;
  network?: 'none' | 'bridge';
}

/**
 * The rules for what a caller asks of a sandbox (a sandbox's `image` and `limits`, or an agent's
 * `sandbox` settings): an allowed image (400), values under the deployment's ceilings (400), and
 * `bridge` networking only where the deployment permits it (400) and only from a project owner or
 * admin (403; agent keys never). `alreadyBridge`: the caller keeps what an admin granted before.
 */
export function assertSandboxRequest(role: Role, req: SandboxRequest, opts: { alreadyBridge?: boolean } = {}): void {
  if (req.image) assertImageAllowed(req.image);
  const over = ceilingViolations(req, ceilings());
  if (over.length) throw badRequest(`Sandbox limits above this deployment's ceilings: ${over.join('; ')}`);
  if (req.network === 'bridge') {
    if (!config.allowBridgeNetwork) {
      throw badRequest('network "bridge" is not permitted on this deployment (TROUPE_ALLOW_BRIDGE_NETWORK is off): sandboxes run with no network');
    }
    if (!opts.alreadyBridge && !['owner', 'admin'].includes(role)) {
      throw forbidden('Only project owners and admins can give a sandbox network "bridge"');
    }
  }
}

/**
 * Image: explicit > agent's sandbox settings > agent type default > TROUPE_DEFAULT_IMAGE. Stored
 * settings written before the ceilings existed are brought down to them, and `bridge` to `none`
 * where the deployment no longer permits it (the worker does the same when it builds the container).
 */
export async function sandboxDefaults(agent: AgentRow, conn: Db = db): Promise<{ image: string; limits: SandboxLimits }> {
  const s = (agent.sandbox ?? {}) as Record<string, any>;
  let image = s.image as string | undefined;
  if (!image && agent.agent_type_id) image = (await sandboxes.agentTypeImage(conn, agent.agent_type_id)) ?? undefined;
  const limits: SandboxLimits = {};
  if (s.memory_mb) limits.memory_mb = s.memory_mb;
  if (s.cpus) limits.cpus = s.cpus;
  if (s.pids) limits.pids = s.pids;
  if (s.network) limits.network = s.network === 'bridge' && !config.allowBridgeNetwork ? 'none' : s.network;
  return { image: image || config.defaultImage, limits: clampToCeilings(limits, ceilings()) };
}

/**
 * Inserts a sandbox row, within the project's sandbox quota (429 when full; `conn` must be a
 * transaction, which holds the quota lock until it commits). The image, wherever it came from,
 * must be allowed (400).
 */
export async function insertSandbox(conn: Tx, projectId: string, agent: AgentRow, input: SandboxInput, ownerSessionId?: string): Promise<SandboxRow> {
  const d = await sandboxDefaults(agent, conn);
  assertImageAllowed(input.image || d.image);
  await assertSandboxQuota(conn, projectId);
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
