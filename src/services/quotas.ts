/**
 * Per-project quotas, the one mechanism for per-project limits (TROUPE_PROJECT_MAX_SANDBOXES,
 * TROUPE_PROJECT_MAX_RUNNING_SESSIONS; 0 = unlimited). Each check runs inside the transaction that
 * creates the thing it limits, under the project's quota lock (db/repositories/quotas.ts), so
 * concurrent requests are counted one after another. Over quota: 429 with Retry-After, saying what
 * is in use and how to free some; nothing is created.
 *
 * What counts as a running session: queued or running. Creating a session that starts with work
 * (a message or prompt), waking an idle one with a message, and resuming a paused one each add
 * one, so each is checked; a message to a session already queued or running, or to a paused one
 * (it stays paused), adds none.
 */
import { config } from '../config.js';
import type { Tx } from '../db/knex.js';
import * as quotas from '../db/repositories/quotas.js';
import { rateLimited } from '../domain/errors.js';

/** How long a client is told to wait: quotas free up when someone stops or finishes something. */
const SANDBOX_RETRY_AFTER_S = 60;
const SESSION_RETRY_AFTER_S = 10;

export interface QuotaLimits {
  maxSandboxes: number;
  maxRunningSessions: number;
}

export const deploymentQuotas = (): QuotaLimits => ({ maxSandboxes: config.projectMaxSandboxes, maxRunningSessions: config.projectMaxRunningSessions });

/** Throws 429 unless the project may have one more sandbox that is not stopped. */
export async function assertSandboxQuota(tx: Tx, projectId: string, limits = deploymentQuotas()): Promise<void> {
  if (!limits.maxSandboxes) return;
  await quotas.lockProject(tx, projectId);
  const inUse = await quotas.liveSandboxes(tx, projectId);
  if (inUse >= limits.maxSandboxes) {
    throw rateLimited(
      `Sandbox quota reached: this project has ${inUse} sandboxes that are not stopped, and the limit is ${limits.maxSandboxes} ` +
      '(TROUPE_PROJECT_MAX_SANDBOXES). Free one by deleting a sandbox (DELETE /api/v1/sandboxes/:id) or stopping a session that has ' +
      'its own, then try again.',
      SANDBOX_RETRY_AFTER_S,
    );
  }
}

/** Throws 429 unless the project may have one more session queued or running. */
export async function assertRunningSessionQuota(tx: Tx, projectId: string, limits = deploymentQuotas()): Promise<void> {
  if (!limits.maxRunningSessions) return;
  await quotas.lockProject(tx, projectId);
  const inUse = await quotas.busySessions(tx, projectId);
  if (inUse >= limits.maxRunningSessions) {
    throw rateLimited(
      `Running-session quota reached: this project has ${inUse} sessions queued or running, and the limit is ${limits.maxRunningSessions} ` +
      '(TROUPE_PROJECT_MAX_RUNNING_SESSIONS). Wait for one to finish its turn, or pause or stop one, then try again.',
      SESSION_RETRY_AFTER_S,
    );
  }
}
