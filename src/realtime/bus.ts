/**
 * The hub's fan-out over Redis pub/sub. Workers and api processes publish; every api process
 * subscribes and hands messages to its SSE, Socket.IO and /ws clients.
 *
 * Channels: `<prefix>:session:<id>` (everything about one session, deltas included) and
 * `<prefix>:project:<id>` (durable events and status only; deltas stay on the session channel).
 * Live deltas are also appended to a per-session Redis list until their message is durable, so a
 * client that connects mid-message can replay what it missed.
 */
import { key, redis } from '../lib/redis.js';
import type { DeliveredEvent } from '../domain/hub-events.js';
import type { EventRow } from '../domain/sessions.js';

/**
 * Live messages carry (activation, seq), increasing within a session, so replays can be
 * deduplicated, and `at`: when the worker published it, in ms since the epoch with microsecond
 * precision (a client can tell how late a delta is; the deltas benchmark times the whole path).
 */
interface LiveOrder {
  activation: number;
  seq: number;
  at?: number;
}

/** Wall-clock ms with microseconds (Date.now() has whole ms only). */
function preciseNow(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
}
export type LiveMessage =
  | ({ type: 'text_delta'; session_id: string; project_id: string; turn: number; delta: string } & LiveOrder)
  | ({ type: 'tool_use_start'; session_id: string; project_id: string; tool_use_id: string; name: string; input: unknown } & LiveOrder)
  | ({ type: 'tool_output_delta'; session_id: string; project_id: string; tool_use_id: string; stream: 'stdout' | 'stderr'; chunk: string } & LiveOrder);
/** A named Socket.IO event for a project's dashboards (e.g. agent:chat:reply). */
export type DashboardMessage = { type: 'dashboard'; project_id: string; name: string; data: Record<string, unknown>; session_id?: undefined };
export type BusMessage = { type: 'event'; session_id: string; project_id: string; event: EventRow } | LiveMessage | DashboardMessage;

export const sessionChannel = (id: string) => key('session', id);
export const projectChannel = (id: string) => key('project', id);
export const deltaBufferKey = (sessionId: string) => key('deltas', sessionId);

/** Durable events go to both channels; once a message or tool result is durable its buffered deltas are dropped. */
export async function publishEvents(events: EventRow[]): Promise<void> {
  if (!events.length) return;
  const pipe = redis().pipeline();
  for (const event of events) {
    const msg = JSON.stringify({ type: 'event', session_id: event.session_id, project_id: event.project_id, event } satisfies BusMessage);
    pipe.publish(sessionChannel(event.session_id), msg);
    pipe.publish(projectChannel(event.project_id), msg);
    if (event.event_type === 'message' || event.event_type === 'tool_result') pipe.del(deltaBufferKey(event.session_id));
  }
  await pipe.exec();
}

/** Live only: published and buffered, never stored as rows. */
export async function publishLive(msg: LiveMessage): Promise<void> {
  const json = JSON.stringify({ ...msg, at: preciseNow() });
  const buf = deltaBufferKey(msg.session_id);
  await redis().pipeline().rpush(buf, json).expire(buf, 3600).publish(sessionChannel(msg.session_id), json).exec();
}

/** Emits `name` with `data` to the project's Socket.IO room on every api replica. */
export async function publishDashboard(projectId: string, name: string, data: Record<string, unknown>): Promise<void> {
  const msg: DashboardMessage = { type: 'dashboard', project_id: projectId, name, data };
  await redis().publish(projectChannel(projectId), JSON.stringify(msg));
}

export async function bufferedDeltas(sessionId: string): Promise<BusMessage[]> {
  const items = await redis().lrange(deltaBufferKey(sessionId), 0, -1);
  return items.map((s) => JSON.parse(s) as BusMessage);
}

export const agentChannel = (agentId: string) => key('agent', agentId);
export const debugChannel = () => key('debug');

/** A hub event to the agent's /ws connections (any replica) and to GET /debug/events. */
export async function publishAgentEvent(delivered: DeliveredEvent): Promise<void> {
  const { hasWebhook: _internal, ...wire } = delivered;
  const json = JSON.stringify(wire);
  await redis().pipeline().publish(agentChannel(delivered.agentId), json).publish(debugChannel(), json).exec();
}
