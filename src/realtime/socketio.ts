/**
 * Socket.IO for dashboards (seed 004). Clients authenticate in the handshake (`auth: {token}`),
 * then `subscribe` to a project room (every conversation event of the project) or a
 * conversation's own room (its events plus its live deltas); membership is checked on each.
 *
 * Bus messages reach each api process through its own Redis subscription and are emitted to its
 * local sockets only (`io.local`), so nothing is delivered twice however many replicas run. The
 * Redis Streams adapter carries what the app emits directly (e.g. agent:chat:reply) across
 * replicas, and survives Redis reconnects.
 */
import type http from 'node:http';
import { Server, type Socket } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { config } from '../config.js';
import { getSession, type EventRow } from '../db/session-store.js';
import { bearerToken, type Principal } from '../http/auth.js';
import { clientIp, rateLimits } from '../http/rate-limit.js';
import { compileBody } from '../http/schema.js';
import { createRedis } from '../lib/redis.js';
import { isUuid, membershipOf } from '../services/access.js';
import { maySeeSession } from '../services/session-access.js';
import { projectChannel, sessionChannel, type BusMessage } from './bus.js';
import { listen } from './subscriber.js';
import { cachedCheck, reauthenticate, watchAccess } from './recheck.js';

const subscribeSchema = {
  oneOf: [
    { type: 'object', properties: { project_id: { type: 'string', format: 'uuid' } }, required: ['project_id'], additionalProperties: false },
    { type: 'object', properties: { conversation_id: { type: 'string', format: 'uuid' } }, required: ['conversation_id'], additionalProperties: false },
  ],
};
const validSubscribe = compileBody(subscribeSchema);

type Ack = (reply: { ok: true } | { error: string }) => void;

/** The seed 004 events of one durable event. */
export function dashboardEvents(e: EventRow): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  const p = e.payload as Record<string, any>;
  if (e.event_type === 'status' && p.reason === 'created') {
    out.push(['agent:conversation:started', { conversation_id: e.session_id, agent_id: p.agent_id, trigger_type: p.trigger_type }]);
  }
  out.push(['agent:conversation:event', { event_type: e.event_type, conversation_id: e.session_id, event_source: e.event_source, event_index: e.event_index, payload: e.payload }]);
  if (e.event_type === 'status') out.push(['agent:conversation:status', { conversation_id: e.session_id, status: p.status }]);
  // Once per pull request: an update of the same one is an agent:conversation:event only.
  if (e.event_type === 'pr_created' && p.action === 'created') {
    out.push(['agent:conversation:pr_created', { conversation_id: e.session_id, task_id: p.task_id ?? null, pr_url: p.pr_url, branch_name: p.branch_name }]);
  }
  return out;
}

export function attachSocketIO(server: http.Server): { io: Server; close(): Promise<void> } {
  const adapterRedis = createRedis({ forBullmq: true, name: 'troupe-socketio' });
  const io = new Server(server, {
    adapter: createAdapter(adapterRedis, { streamName: `${config.redisPrefix}:socket.io` }),
    cors: { origin: true, credentials: true },
    // /ws upgrades belong to the agent WebSocket; engine.io must not destroy them.
    destroyUpgrade: false,
  });

  io.use(async (socket, next) => {
    try {
      const token = (socket.handshake.auth as { token?: string })?.token ?? bearerToken(socket.handshake.headers.authorization);
      // Bad tokens count against the address, as on REST (http/rate-limit.ts).
      socket.data.principal = await rateLimits().authenticate(token ?? null, clientIp(socket.request));
      socket.data.token = token ?? null;
      next();
    } catch (err) {
      next(new Error((err as Error).message));
    }
  });

  // One bus listener per room per process, however many local sockets are in the room.
  const feeds = new Map<string, { refs: number; stop: Promise<() => void> }>();
  const retain = (room: string, channel: string, onMsg: (m: BusMessage) => void) => {
    const f = feeds.get(room);
    if (f) f.refs++;
    else feeds.set(room, { refs: 1, stop: listen(channel, onMsg) });
    return feeds.get(room)!.stop;
  };
  const release = (room: string) => {
    const f = feeds.get(room);
    if (!f || --f.refs > 0) return;
    feeds.delete(room);
    void f.stop.then((stop) => stop());
  };

  // A feed's broadcast operators are made once, not per message (they are immutable).
  const projectFeed = (projectId: string) => {
    const room = io.local.to(`project:${projectId}`);
    return (m: BusMessage) => {
      if (m.type === 'dashboard') {
        room.emit(m.name, m.data);
        return;
      }
      if (m.type !== 'event') return;
      for (const [name, data] of dashboardEvents(m.event)) room.emit(name, data);
    };
  };
  const conversationFeed = (sessionId: string, projectId: string) => {
    const room = io.local.to(`conversation:${sessionId}`);
    // Sockets also in the project room get durable events from the project feed.
    const notInProject = room.except(`project:${projectId}`);
    return (m: BusMessage) => {
      if (m.type === 'event') {
        for (const [name, data] of dashboardEvents(m.event)) notInProject.emit(name, data);
      } else if (m.type !== 'dashboard') {
        const { project_id: _p, session_id, ...rest } = m;
        room.emit('agent:conversation:delta', { conversation_id: session_id, ...rest });
      }
    };
  };

  io.on('connection', (socket: Socket) => {
    const principal = socket.data.principal as Principal;
    const token = socket.data.token as string | null;
    const joined = new Set<string>();

    // Every period: the token still authenticates, and each joined room is still the caller's to
    // see; otherwise the socket is told why and disconnected.
    const unwatch = watchAccess(async () => {
      if (!(await cachedCheck(token, 'auth', async () => Boolean(await reauthenticate(token))))) return false;
      for (const room of joined) {
        const ok = await cachedCheck(token, room, async () => {
          const now = await reauthenticate(token);
          if (!now) return false;
          const [kind, id] = room.split(':');
          if (kind === 'project') return Boolean(await membershipOf(now, id));
          const s = await getSession(id);
          return Boolean(s && (await maySeeSession(now, s)));
        });
        if (!ok) return false;
      }
      return true;
    }, () => {
      socket.emit('access_revoked', { error: 'Access was revoked (key revoked, membership removed or token expired): reconnect with a valid token' });
      socket.disconnect(true);
    });

    socket.on('subscribe', async (arg: unknown, ack?: Ack) => {
      const reply: Ack = typeof ack === 'function' ? ack : () => {};
      try {
        if (!validSubscribe(arg)) return reply({ error: 'Expected {project_id} or {conversation_id} (a uuid)' });
        const a = arg as { project_id?: string; conversation_id?: string };
        if (a.project_id) {
          if (!(await membershipOf(principal, a.project_id))) return reply({ error: 'Project not found' });
          // A project room carries every agent's conversations: dashboards are for members, and an
          // agent key acts only as its own agent (it may join its own conversations' rooms).
          if (principal.kind === 'agent') return reply({ error: 'An agent API key subscribes to its own conversations ({conversation_id}), not to project rooms' });
          const room = `project:${a.project_id}`;
          if (!joined.has(room)) {
            await retain(room, projectChannel(a.project_id), projectFeed(a.project_id));
            joined.add(room);
            await socket.join(room);
          }
          return reply({ ok: true });
        }
        const s = isUuid(a.conversation_id) ? await getSession(a.conversation_id) : null;
        // Project membership, an agent key's own agent, a chat's owner: the one rule (services/session-access.ts).
        if (!s || !(await maySeeSession(principal, s))) {
          return reply({ error: 'Conversation not found' });
        }
        const room = `conversation:${s.id}`;
        if (!joined.has(room)) {
          await retain(room, sessionChannel(s.id), conversationFeed(s.id, s.project_id));
          joined.add(room);
          await socket.join(room);
        }
        return reply({ ok: true });
      } catch {
        return reply({ error: 'Subscription failed; try again' });
      }
    });

    socket.on('unsubscribe', async (arg: unknown, ack?: Ack) => {
      const a = (arg ?? {}) as { project_id?: string; conversation_id?: string };
      const room = a.project_id ? `project:${a.project_id}` : `conversation:${a.conversation_id}`;
      if (joined.delete(room)) {
        await socket.leave(room);
        release(room);
      }
      if (typeof ack === 'function') ack({ ok: true });
    });

    socket.on('disconnect', () => {
      unwatch();
      for (const room of joined) release(room);
      joined.clear();
    });
  });

  return {
    io,
    async close() {
      io.disconnectSockets(true);
      await new Promise<void>((r) => io.close(() => r()));
      adapterRedis.disconnect();
    },
  };
}
