/**
 * The api process: one HTTP server carrying the Koa REST API and SSE (and, from the realtime
 * layer, Socket.IO and /ws). Stateless, so any number can run behind a load balancer.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { createApp, type AppOptions } from './http/app.js';
import { config } from './config.js';
import { attachSocketIO } from './realtime/socketio.js';
import { attachAgentWebSocket } from './realtime/agent-ws.js';
import { closeSubscriber } from './realtime/subscriber.js';
import { endAllStreams } from './realtime/sse-writer.js';
import { installDefaultPorts } from './wiring.js';

export interface ApiServer {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(opts: { port?: number; host?: string } & AppOptions = {}): Promise<ApiServer> {
  installDefaultPorts();
  const app = createApp({ rateLimits: opts.rateLimits });
  const server = http.createServer(app.callback());
  // SSE streams and long-polls must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  const agentWs = attachAgentWebSocket(server);
  const sio = attachSocketIO(server);
  // Upgrades to any other path have no owner (Socket.IO is told not to destroy them, for /ws):
  // answer and close them, or each would hold a connection open forever.
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/ws' || path.startsWith('/socket.io/')) return;
    const body = JSON.stringify({ error: `No WebSocket endpoint at ${path}: use /ws (agents) or Socket.IO at /socket.io/` });
    socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? config.port, opts.host ?? config.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    /**
     * Stop accepting, end every stream (SSE clients reconnect with Last-Event-ID, Socket.IO and
     * /ws clients reconnect, to another replica or to this one restarted), then drop what is left.
     * Long-lived streams would otherwise hold server.close() open forever.
     */
    async close() {
      const closed = new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));
      endAllStreams();
      agentWs.close();
      const sioClosed = sio.close().catch(() => {});
      server.closeAllConnections?.();
      await Promise.race([Promise.all([closed, sioClosed]), new Promise((r) => setTimeout(r, 3000))]);
      await closeSubscriber().catch(() => {});
    },
  };
}
