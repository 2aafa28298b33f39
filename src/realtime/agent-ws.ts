/**
 * The agent WebSocket (seed 003) at /ws: `Authorization: Bearer <api-key>` at the upgrade
 * (refused with 401 otherwise), then `{"type":"connected","agentId"}` and every hub event
 * addressed to that agent, as it happens. Missed events are recoverable with /api/v1/updates.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken } from '../http/auth.js';
import { clientIp, rateLimits } from '../http/rate-limit.js';
import { cachedCheck, reauthenticate, watchAccess } from './recheck.js';
import { log } from '../log.js';
import { DomainError, isDomainError } from '../domain/errors.js';
import type { DeliveredEvent } from '../domain/hub-events.js';
import { agentChannel } from './bus.js';
import { listenRaw } from './subscriber.js';

export function attachAgentWebSocket(server: http.Server): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws') return; // Socket.IO handles its own path
    void (async () => {
      const token = bearerToken(req.headers.authorization);
      // Bad keys count against the address, as on REST; over the limit the upgrade is refused too.
      let limited: DomainError | null = null;
      const principal = await rateLimits().authenticate(token, clientIp(req)).catch((err) => {
        if (isDomainError(err, 'rate_limited')) limited = err;
        return null;
      });
      if (limited) {
        const { message, retryAfter } = limited as DomainError;
        const body = JSON.stringify({ error: message });
        socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: ${retryAfter ?? 60}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      if (!principal || principal.kind !== 'agent') {
        const body = JSON.stringify({ error: 'An agent API key is required: Authorization: Bearer <api-key>' });
        socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => void onConnection(ws, principal.agentId, token));
    })();
  });

  async function onConnection(ws: WebSocket, agentId: string, token: string | null) {
    // A revoked key or a deleted agent: closed within a period (4401, as a 401 would say).
    const unwatch = watchAccess(() => cachedCheck(token, 'ws', async () => Boolean(await reauthenticate(token))), () => {
      if (ws.readyState === ws.OPEN) ws.close(4401, 'API key revoked or agent deleted');
      else ws.terminate();
    });
    ws.on('close', unwatch);
    const stop = await listenRaw(agentChannel(agentId), (raw) => {
      try {
        const d = JSON.parse(raw) as DeliveredEvent;
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ ...d.event, cursor: d.cursor }));
      } catch {
        /* ignore malformed */
      }
    });
    ws.on('close', stop);
    ws.on('error', (err) => log.debug({ err }, 'ws error'));
    // Clients may ping with {"type":"ping"}; anything else is ignored (the REST API is for actions).
    ws.on('message', (data) => {
      try {
        if ((JSON.parse(String(data)) as { type?: string }).type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
      } catch {
        /* not JSON */
      }
    });
    ws.send(JSON.stringify({ type: 'connected', agentId }));
  }

  return {
    close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
