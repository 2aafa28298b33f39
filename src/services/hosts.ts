/**
 * The worker hosts, seen by an operator (issue 13): list them with their load and heartbeat age,
 * and ask one to drain. Draining is recorded on the host's row; the host itself notices on its
 * next heartbeat and does the work (runtime/host.ts), so this needs no queue.
 */
import { config } from '../config.js';
import * as hosts from '../db/repositories/hosts.js';
import { conflict, notFound } from '../domain/errors.js';

export function hostView(h: hosts.HostView) {
  return {
    id: h.id,
    engine: h.engine,
    capacity: h.capacity,
    state: h.state,
    // A live host whose heartbeat is older than this is about to be declared dead.
    heartbeat_age_seconds: Math.round(h.heartbeat_age_seconds * 10) / 10,
    stale: h.state !== 'dead' && h.heartbeat_age_seconds > config.hostDeadSeconds,
    sandboxes: h.sandboxes,
    started_at: h.started_at,
    state_changed_at: h.state_changed_at,
  };
}

export async function listHosts() {
  return { hosts: (await hosts.list()).map(hostView), dead_after_seconds: config.hostDeadSeconds };
}

export async function drainHost(id: string) {
  const h = await hosts.byId(id);
  if (!h) throw notFound('Host');
  if (h.state === 'dead') throw conflict(`Host "${id}" is dead: its sessions are recovered on other hosts already`);
  await hosts.setState(id, 'draining', ['live']);
  const now = (await hosts.list()).find((x) => x.id === id)!;
  return hostView(now);
}
