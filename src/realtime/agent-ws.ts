/**
 * The agent WebSocket (seed 003) at /ws: `Authorization: Bearer <api-key>` at the upgrade
 * (refused with 401 otherwise), then `{"type":"connected","agentId"}` and every hub event
 * addressed to that agent, as it happens. Missed events are recoverable with /api/v1/updates.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticateToken, bearerToken } from '../http/auth.js';
import { log } from '../log.js';
import type { DeliveredEvent } from '../domain/hub-events.js';
import { agentChannel } from './bus.js';
import { listenRaw } from './subscriber.js';

export function attachAgentWebSocket(server: http.Server): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws') return; // Socket.IO handles its own path
    void (async () => {
      const principal = await authenticateToken(bearerToken(req.headers.authorization)).catch(() => null);
      if (!principal || principal.kind !== 'agent') {
        const body = JSON.stringify({ error: 'An agent API key is required: Authorization: Bearer <api-key>' });
        socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => void onConnection(ws, principal.agentId));
    })();
  });

  async function onConnection(ws: WebSocket, agentId: string) {
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
