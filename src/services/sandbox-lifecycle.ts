/**
 * A sandbox's lifecycle as seed 002 drives it: create (a worker starts the container), pause,
 * resume and delete, each carried to the sessions inside it. The row records the intent first;
 * the worker that owns the container is then told, and the answer waits for it.
 */
import { db } from '../db/knex.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import { sessionsIn } from '../db/session-store.js';
import { conflict, isDomainError, unprocessable } from '../domain/errors.js';
import { ports } from '../domain/ports.js';
import type { Membership } from './access.js';
import type { AgentRow } from '../db/repositories/agents.js';
import { assertSandboxRequest, insertSandbox, type SandboxInput, type SandboxRow } from './sandboxes.js';
import { pauseSession, resumeSession, stopSession } from './sessions.js';

/**
 * Creates the sandbox and has a worker start its container; nothing is left when that fails.
 * What the caller asks for is checked first (image, ceilings, bridge: see assertSandboxRequest),
 * then the project's sandbox quota, counted under its lock in the inserting transaction.
 */
export async function createSandbox(m: Membership, agent: AgentRow, input: SandboxInput): Promise<SandboxRow> {
  assertSandboxRequest(m.role, { image: input.image, ...input.limits });
  const sb = await db.transaction((tx) => insertSandbox(tx, m.projectId, agent, input));
  try {
    await ports().commands.ensure(sb.id);
  } catch (err) {
    // Recorded as stopped first, so a late worker taking the command creates nothing.
    await sandboxes.setState(sb.id, 'stopped');
    await ports().commands.remove(sb.id).catch(() => {});
    await sandboxes.remove(sb.id);
    if (isDomainError(err, 'unprocessable')) throw unprocessable(`Could not start the sandbox: ${err.message}`);
    throw err;
  }
  return (await sandboxes.byId(sb.id))!;
}

/** Stops every session in the sandbox (saying why), then has its container removed. */
export async function deleteSandbox(sb: SandboxRow, reason = 'sandbox deleted'): Promise<SandboxRow> {
  // All at once: each is a command to the worker, and a sandbox may hold many sessions.
  await Promise.all((await sessionsIn(sb.id)).map((s) => stopSession(s, reason).catch(() => {})));
  await sandboxes.setState(sb.id, 'stopped');
  await ports().commands.remove(sb.id);
  return (await sandboxes.byId(sb.id))!;
}

/** The answer when another request changed the sandbox first: its state as it is now. */
async function lost(sb: SandboxRow, action: string): Promise<never> {
  throw conflict(`Cannot ${action} a sandbox that is ${(await sandboxes.byId(sb.id))?.state ?? 'deleted'}`);
}

// Pause and resume move the row by compare-and-set before anything else, so of concurrent
// requests exactly one wins each transition, and none revives a deleted sandbox; the worker
// then converges the container on whatever the row says last.
export async function pauseSandbox(sb: SandboxRow): Promise<SandboxRow> {
  if (sb.state !== 'active' || !(await sandboxes.transition(sb.id, ['active'], 'paused'))) return lost(sb, 'pause');
  await Promise.all((await sessionsIn(sb.id)).map((s) => pauseSession(s, 'sandbox paused').catch(() => {})));
  await ports().commands.pause(sb.id);
  return (await sandboxes.byId(sb.id))!;
}

export async function resumeSandbox(sb: SandboxRow): Promise<SandboxRow> {
  if (sb.state !== 'paused' || !(await sandboxes.transition(sb.id, ['paused'], 'active'))) return lost(sb, 'resume');
  await ports().commands.resume(sb.id);
  await Promise.all((await sessionsIn(sb.id)).filter((s) => s.status === 'paused').map((s) => resumeSession(s).catch(() => {})));
  return (await sandboxes.byId(sb.id))!;
}
