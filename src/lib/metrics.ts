/** Prometheus metrics, served at GET /metrics. */
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
