/**
 * Where a sandbox's commands and activations go (issue 13): to the worker host recorded on the
 * sandbox row. A sandbox without a host is placed (least loaded live host with room, see
 * db/repositories/hosts.ts) when something is about to need its container; a sandbox whose host
 * was declared dead has no host until the recovery sweep (runtime/host.ts) or the next placement
 * gives it one.
 */
import { config } from '../config.js';
import * as hosts from '../db/repositories/hosts.js';

/** The host of a sandbox; with `place`, places it when it has none. Null: no host (none with room, or not placed). */
export async function hostForSandbox(sandboxId: string, opts: { place: boolean }): Promise<string | null> {
  if (opts.place) return hosts.place(sandboxId, config.hostDeadSeconds);
  const sb = await hosts.sandboxHost(sandboxId);
  if (!sb?.host_id) return null;
  return sb.host_state === 'dead' ? null : sb.host_id;
}

/** The host of a session's sandbox (not placing it). */
export async function hostForSession(sessionId: string): Promise<string | null> {
  const s = await hosts.sandboxOfSession(sessionId);
  return s ? hostForSandbox(s.sandbox_id, { place: false }) : null;
}

/** Says why nothing could be placed, for a 503. */
export async function noHostMessage(): Promise<string> {
  const all = await hosts.list();
  const live = all.filter((h) => h.state === 'live' && h.heartbeat_age_seconds < config.hostDeadSeconds);
  if (!live.length) return 'No worker host is running (start one with `npm run start:worker`; GET /readyz shows them). Retry later.';
  return `Every worker host is full (${live.length} live, TROUPE_HOST_MAX_SANDBOXES each). Retry later, or add a host.`;
}
