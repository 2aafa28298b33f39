/**
 * The hub's fan-out over Redis pub/sub. Workers and api processes publish; every api process
 * subscribes and hands messages to its SSE, Socket.IO and /ws clients.
 *
 * Channels: `<prefix>:session:<id>` (everything about one session, deltas included) and
 * `<prefix>:project:<id>` (durable events and status only; deltas stay on the session channel).
 * Live deltas are also appended to a per-session Redis list until their message is durable, so a
 * client that connects mid-message can replay what it missed.
 */
import type { Redis } from 'ioredis';
import { config } from '../config.js';
import { key, redis } from '../lib/redis.js';
import type { DeliveredEvent } from '../domain/hub-events.js';
import { isTerminal, type EventRow } from '../domain/sessions.js';

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
  | ({ type: 'tool_output_delta'; session_id: string; project_id: string; tool_use_id: string; stream: 'stdout' | 'stderr'; chunk: string } & LiveOrder)
  /** Replay only: the buffer hit its cap and dropped this many bytes of older live output. */
  | ({ type: 'live_truncated'; session_id: string; project_id: string; dropped_bytes: number } & LiveOrder);
/** A named Socket.IO event for a project's dashboards (e.g. agent:chat:reply). */
export type DashboardMessage = { type: 'dashboard'; project_id: string; name: string; data: Record<string, unknown>; session_id?: undefined };
export type BusMessage = { type: 'event'; session_id: string; project_id: string; event: EventRow } | LiveMessage | DashboardMessage;

export const sessionChannel = (id: string) => key('session', id);
export const projectChannel = (id: string) => key('project', id);
export const deltaBufferKey = (sessionId: string) => key('deltas', sessionId);
const deltaBytesKey = (sessionId: string) => key('deltas-bytes', sessionId);
/** Set when a session ends: late deltas still in flight are published but no longer buffered. */
const deltaClosedKey = (sessionId: string) => key('deltas-closed', sessionId);

/** Durable events go to both channels; once a message or tool result is durable its buffered deltas are dropped. */
export async function publishEvents(events: EventRow[]): Promise<void> {
  if (!events.length) return;
  const pipe = redis().pipeline();
  for (const event of events) {
    const msg = JSON.stringify({ type: 'event', session_id: event.session_id, project_id: event.project_id, event } satisfies BusMessage);
    pipe.publish(sessionChannel(event.session_id), msg);
    pipe.publish(projectChannel(event.project_id), msg);
    // Once the message or tool result is durable its deltas are no longer needed for replay; a
    // session that ended needs none at all.
    const ended = event.event_type === 'status' && isTerminal(String(event.payload.status));
    if (event.event_type === 'message' || event.event_type === 'tool_result' || ended) {
      pipe.del(deltaBufferKey(event.session_id), deltaBytesKey(event.session_id));
    }
    if (ended) pipe.set(deltaClosedKey(event.session_id), '1', 'EX', 3600);
  }
  await pipe.exec();
}

/**
 * Appends to the replay buffer, keeps it under its byte cap by dropping the oldest entries (with
 * one `live_truncated` marker at the head saying how much went), refreshes the expiry and
 * publishes: one round trip, atomic. A sandbox printing megabytes cannot grow Redis without bound.
 */
const PUBLISH_LIVE = `
redis.call('publish', KEYS[3], ARGV[1])
if redis.call('exists', KEYS[4]) == 1 then return 0 end
redis.call('rpush', KEYS[1], ARGV[1])
local total = redis.call('incrby', KEYS[2], #ARGV[1])
local cap = tonumber(ARGV[2])
if total > cap then
  local dropped = 0
  local head = redis.call('lindex', KEYS[1], 0)
  if head and string.find(head, '"type":"live_truncated"', 1, true) then
    dropped = tonumber(string.match(head, '"dropped_bytes":(%d+)')) or 0
    redis.call('lpop', KEYS[1])
    total = redis.call('incrby', KEYS[2], -#head)
  end
  while total > cap and redis.call('llen', KEYS[1]) > 1 do
    local old = redis.call('lpop', KEYS[1])
    dropped = dropped + #old
    total = redis.call('incrby', KEYS[2], -#old)
  end
  local marker = string.gsub(ARGV[5], '"dropped_bytes":0', '"dropped_bytes":' .. dropped)
  redis.call('lpush', KEYS[1], marker)
  redis.call('incrby', KEYS[2], #marker)
end
redis.call('expire', KEYS[1], ARGV[3])
redis.call('expire', KEYS[2], ARGV[3])
return 1
`;

type LiveCommand = (k1: string, k2: string, k3: string, k4: string, json: string, cap: number, ttl: number, unused: string, marker: string) => Promise<unknown>;
let defined: Redis | undefined;
/** The script as a command of the shared connection (EVALSHA, loaded once). */
function publishLiveCommand(): LiveCommand {
  const r = redis();
  if (defined !== r) {
    r.defineCommand('troupePublishLive', { numberOfKeys: 4, lua: PUBLISH_LIVE });
    defined = r;
  }
  return (r as unknown as { troupePublishLive: LiveCommand }).troupePublishLive.bind(r);
}

/** Live only: published and buffered, never stored as rows. */
export async function publishLive(msg: LiveMessage): Promise<void> {
  const json = JSON.stringify({ ...msg, at: preciseNow() });
  const marker = JSON.stringify({ type: 'live_truncated', session_id: msg.session_id, project_id: msg.project_id, dropped_bytes: 0, activation: msg.activation, seq: -msg.seq });
  await publishLiveCommand()(deltaBufferKey(msg.session_id), deltaBytesKey(msg.session_id), sessionChannel(msg.session_id), deltaClosedKey(msg.session_id), json, config.liveBufferBytes ?? 1024 * 1024, 3600, '', marker);
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
