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
 * Per worker host (issue 13). Host ids are set by operators (a small set). The gauges are read
 * from the hosts table at scrape time, so any api replica reports every host.
 */
export const hostRecoveries = new client.Counter({
  name: 'troupe_host_recovered_sessions_total',
  help: 'Sessions this process moved off a host declared dead, by the lost host',
  labelNames: ['host'],
  registers: [registry],
});

export const hostSandboxMoves = new client.Counter({
  name: 'troupe_host_sandbox_moves_total',
  help: 'Sandboxes this process moved (with their /workspace) while draining its host',
  labelNames: ['from', 'to'],
  registers: [registry],
});

const HOST_STATES = ['live', 'draining', 'dead'] as const;
new client.Gauge({
  name: 'troupe_host_sandboxes',
  help: 'Sandboxes placed on each worker host, by sandbox state',
  labelNames: ['host', 'state'],
  registers: [registry],
  async collect() {
    this.reset();
    const { list } = await import('../db/repositories/hosts.js');
    for (const h of await list().catch(() => [])) {
      this.set({ host: h.id, state: 'active' }, h.sandboxes.active);
      this.set({ host: h.id, state: 'paused' }, h.sandboxes.paused);
    }
  },
});
new client.Gauge({
  name: 'troupe_host_info',
  help: 'Worker hosts: 1 for the state each is in; capacity and heartbeat age in their own series',
  labelNames: ['host', 'state'],
  registers: [registry],
  async collect() {
    this.reset();
    const { list } = await import('../db/repositories/hosts.js');
    for (const h of await list().catch(() => [])) for (const st of HOST_STATES) this.set({ host: h.id, state: st }, h.state === st ? 1 : 0);
  },
});
new client.Gauge({
  name: 'troupe_host_heartbeat_age_seconds',
  help: 'Seconds since each worker host last heartbeat',
  labelNames: ['host'],
  registers: [registry],
  async collect() {
    this.reset();
    const { list } = await import('../db/repositories/hosts.js');
    for (const h of await list().catch(() => [])) this.set({ host: h.id }, h.heartbeat_age_seconds);
  },
});
new client.Gauge({
  name: 'troupe_host_capacity',
  help: 'TROUPE_HOST_MAX_SANDBOXES of each worker host',
  labelNames: ['host'],
  registers: [registry],
  async collect() {
    this.reset();
    const { list } = await import('../db/repositories/hosts.js');
    for (const h of await list().catch(() => [])) this.set({ host: h.id }, h.capacity);
  },
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
