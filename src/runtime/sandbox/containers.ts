/**
 * Worker side: from a sandbox row to its container. Only a worker process imports this (the api
 * sends the worker commands instead, runtime/commands.ts), and it only ever uses the driver it is
 * handed, so a test or another engine can inject its own.
 */
import { config } from '../../config.js';
import { unsealJson } from '../../lib/secrets.js';
import * as sandboxes from '../../db/repositories/sandboxes.js';
import * as hosts from '../../db/repositories/hosts.js';
import { writeSession } from '../../db/session-store.js';
import { isTerminal } from '../../domain/sessions.js';
import type { SandboxRow } from '../../db/repositories/sandboxes.js';
import { clampToCeilings, imageAllowed } from '../../lib/sandbox-policy.js';
import type { SandboxDriver, SandboxSpec } from './driver.js';
import { exclusive } from '../sandbox-lane.js';

/**
 * The container a sandbox row asks for, within this deployment's rules whatever the row says (the
 * api refuses such requests; this is the defence in depth for rows written before a rule, or by
 * anything else): memory, CPUs and pids brought down to the ceilings, `bridge` only where
 * TROUPE_ALLOW_BRIDGE_NETWORK permits it. The driver pins a non-root user.
 */
export function specFor(sb: SandboxRow, sessionId?: string): SandboxSpec {
  const limits = clampToCeilings(sb.limits ?? {}, { memoryMb: config.sandboxMaxMemoryMb, cpus: config.sandboxMaxCpus, pids: config.sandboxMaxPids });
  return {
    sandboxId: sb.id,
    projectId: sb.project_id,
    sessionId: sb.owner_session_id ?? sessionId,
    image: sb.image,
    env: unsealJson<Record<string, string>>(sb.env_sealed, {}),
    memoryMb: limits.memory_mb ?? config.sandboxMemoryMb,
    cpus: limits.cpus ?? config.sandboxCpus,
    pidsLimit: limits.pids ?? config.sandboxPidsLimit,
    network: limits.network === 'bridge' && config.allowBridgeNetwork ? 'bridge' : 'none',
  };
}

/** What a sandbox with nothing but defaults looks like (the shape the warm pool keeps ready). */
export function defaultSandboxSpec(): SandboxSpec {
  return specFor({ id: 'default', project_id: 'default', image: config.defaultImage, env_sealed: null, limits: {} } as unknown as SandboxRow);
}

/**
 * Creates (or finds) the sandbox's container and records its id. `wake`: a worker about to use the
 * container unpauses it if it is frozen (an exec started in a paused container wedges Docker 20.10).
 *
 * A sandbox that had a container which is gone (its host died, its engine lost it) gets a fresh
 * one, and every session working in it is told with a durable `status` event carrying
 * `sandbox_replaced: {reason, files_lost: true, ...}` (written once: the caller that swaps the
 * recorded container id writes it). A container that had stopped (the engine restarted without
 * live-restore) is started again: its files are kept, its processes are not
 * (`sandbox_restarted: {files_lost: false, processes_lost: true}`).
 */
export async function ensureContainer(driver: SandboxDriver, sb: SandboxRow, sessionId?: string, opts: { wake?: boolean } = {}): Promise<string> {
  // Only allowed images run, even from a row the api would refuse today.
  if (!imageAllowed(sb.image, config.allowedImages)) {
    throw new Error(`Sandbox image "${sb.image}" is not allowed on this deployment (TROUPE_ALLOWED_IMAGES: ${config.allowedImages.join(', ')})`);
  }
  // On the sandbox's lane: never alongside a pause, unpause or removal of the same container.
  return exclusive(sb.id, async () => {
    const had = sb.container_id;
    const before = had ? await driver.find(sb.id) : null;
    const info = await driver.ensure(specFor(sb, sessionId));
    if (opts.wake && info.state === 'paused') {
      await driver.unpause(info.id);
      await sandboxes.setState(sb.id, 'active');
    }
    if (had && (!before || before.id !== info.id)) {
      // The old container is gone: only the caller whose swap wins tells the sessions.
      if (await hosts.swapContainer(sb.id, had, info.id)) {
        await notifySessions(sb.id, {
          sandbox_replaced: { reason: 'the sandbox\'s container was gone (its host or Docker engine was lost)', files_lost: true, previous_container: had.slice(0, 12), host: config.hostId },
        }, 'sandbox replaced: its files were lost');
      }
      sb.container_id = info.id;
    } else if (before && (before.state === 'exited' || before.state === 'dead')) {
      await notifySessions(sb.id, {
        sandbox_restarted: { reason: `the sandbox's container had stopped (${before.state}; the Docker engine restarted?)`, files_lost: false, processes_lost: true, host: config.hostId },
      }, 'sandbox restarted: running processes were lost');
    } else if (sb.container_id !== info.id) {
      await sandboxes.setContainer(sb.id, info.id);
      sb.container_id = info.id;
    }
    return info.id;
  });
}

/** A durable status event (the session's status unchanged) on every session working in the sandbox. */
async function notifySessions(sandboxId: string, notice: Record<string, unknown>, reason: string): Promise<void> {
  for (const s of await hosts.sessionsOfSandbox(sandboxId)) {
    if (isTerminal(s.status)) continue;
    await writeSession(s.id, [{ event_type: 'status', event_source: 'system', payload: { status: s.status, reason, ...notice } }], { from: [s.status as never] });
  }
}
