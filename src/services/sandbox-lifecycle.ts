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
import type { AgentRow } from './agents.js';
import { insertSandbox, type SandboxInput, type SandboxRow } from './sandboxes.js';
import { pauseSession, resumeSession, stopSession } from './sessions.js';

/** Creates the sandbox and has a worker start its container; nothing is left when that fails. */
export async function createSandbox(projectId: string, agent: AgentRow, input: SandboxInput): Promise<SandboxRow> {
  const sb = await insertSandbox(db, projectId, agent, input);
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

/** Stops every session in the sandbox, then has its container removed. */
export async function deleteSandbox(sb: SandboxRow): Promise<SandboxRow> {
  for (const s of await sessionsIn(sb.id)) await stopSession(s, 'sandbox deleted').catch(() => {});
  await sandboxes.setState(sb.id, 'stopped');
  await ports().commands.remove(sb.id);
  return (await sandboxes.byId(sb.id))!;
}

export async function pauseSandbox(sb: SandboxRow): Promise<SandboxRow> {
  if (sb.state !== 'active') throw conflict(`Cannot pause a sandbox that is ${sb.state}`);
  for (const s of await sessionsIn(sb.id)) await pauseSession(s, 'sandbox paused').catch(() => {});
  await sandboxes.setState(sb.id, 'paused');
  await ports().commands.pause(sb.id);
  return (await sandboxes.byId(sb.id))!;
}

export async function resumeSandbox(sb: SandboxRow): Promise<SandboxRow> {
  if (sb.state !== 'paused') throw conflict(`Cannot resume a sandbox that is ${sb.state}`);
  await sandboxes.setState(sb.id, 'active');
  await ports().commands.resume(sb.id);
  for (const s of await sessionsIn(sb.id)) if (s.status === 'paused') await resumeSession(s).catch(() => {});
  return (await sandboxes.byId(sb.id))!;
}
