/**
 * Prometheus metrics, served at GET /metrics (loopback clients, or TROUPE_METRICS_TOKEN: see
 * `metricsAccess`). Label values must come from small fixed sets: every distinct value is a new
 * time series kept for the life of the process, so anything a model or a client chooses (a tool
 * name) is collapsed first (`toolLabel`).
 */
import net from 'node:net';
import crypto from 'node:crypto';
import client from 'prom-client';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'troupe_' });

export const httpRequests = new client.Histogram({
  name: 'troupe_http_request_duration_seconds',
  help: 'HTTP request duration by route and status',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const sessionActivations = new client.Counter({
  name: 'troupe_session_activations_total',
  help: 'Session actor activations started by this process',
  registers: [registry],
});

export const activeSessions = new client.Gauge({
  name: 'troupe_active_sessions',
  help: 'Session activations currently running in this process',
  registers: [registry],
});

/**
 * The tools every session may be offered by name: the built-ins (runtime/tools.ts) and the task
 * tools (services/tasks.ts). Listed here rather than imported so the api's import graph stays off
 * the runtime; test/metrics-access.test.ts checks this list against both.
 */
export const KNOWN_TOOLS: ReadonlySet<string> = new Set([
  'bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish', 'task_reply', 'task_update_status', 'create_pull_request',
]);

/**
 * The `tool` label of a tool call. The name is the model's choice: anything it makes up (and MCP
 * tool names, which come from the agent's MCP servers) would each add a series for ever. Known
 * tools keep their name; MCP tools share `mcp`; anything else is `other`.
 */
export function toolLabel(name: string): string {
  if (KNOWN_TOOLS.has(name)) return name;
  return name.startsWith('mcp__') ? 'mcp' : 'other';
}

export const toolCalls = new client.Histogram({
  name: 'troupe_tool_call_duration_seconds',
  help: 'Tool call duration by tool name',
  labelNames: ['tool'],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
  registers: [registry],
});

export const modelCalls = new client.Histogram({
  name: 'troupe_model_call_duration_seconds',
  help: 'Model call duration by provider and outcome',
  labelNames: ['provider', 'outcome'],
  buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60],
  registers: [registry],
});

export type MetricsAccess = 'ok' | 'unauthorized' | 'forbidden';

function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (net.isIPv4(a)) return a.split('.')[0] === '127';
  return a === '::1';
}

/**
 * Who may read /metrics (process internals, route names, load): a client on this machine, or one
 * that presents TROUPE_METRICS_TOKEN as a bearer token. A request a reverse proxy relayed
 * (X-Forwarded-For / Forwarded present) is not "on this machine", though its socket is loopback:
 * otherwise a proxy in front of the api would open /metrics to the internet.
 */
export function metricsAccess(req: { remoteAddress: string | undefined; forwarded: boolean; authorization: string | undefined }, token: string | undefined): MetricsAccess {
  if (token) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.authorization ?? '');
    if (m) {
      const given = crypto.createHash('sha256').update(m[1]).digest();
      const want = crypto.createHash('sha256').update(token).digest();
      return crypto.timingSafeEqual(given, want) ? 'ok' : 'unauthorized';
    }
  }
  if (isLoopbackAddress(req.remoteAddress) && !req.forwarded) return 'ok';
  return token ? 'unauthorized' : 'forbidden';
}
