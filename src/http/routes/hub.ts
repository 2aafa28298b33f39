/**
 * Seed 003 REST, in its camelCase: pairing codes, connections, tasks and task messages, the
 * updates log, and the debug event stream. Each acts as an agent: the API key's, or for a user
 * token the project agent named by asAgentId.
 */
import { defineRoute } from '../registry.js';
import { idOrHandle, nonEmpty, obj, repositoryFields } from '../schema.js';
import { forbidden } from '../errors.js';
import { bearerToken, isAdmin } from '../auth.js';
import { cachedCheck, reauthenticate, watchAccess } from '../../realtime/recheck.js';
import { actingAgent } from '../../services/acting-agent.js';
import * as connections from '../../services/connections.js';
import * as tasks from '../../services/tasks.js';
import { updatesFor } from '../../services/hub.js';
import { debugChannel } from '../../realtime/bus.js';
import { SseWriter } from '../../realtime/sse-writer.js';
import { KEEPALIVE_MS } from '../../realtime/sse.js';
import { listenRaw } from '../../realtime/subscriber.js';

const asAgentId = { ...idOrHandle, description: 'For user tokens: the project agent to act as (its id, or its handle)' } as const;
const taskStatus = { type: 'string', enum: ['submitted', 'working', 'input-required', 'completed', 'failed', 'cancelled'] } as const;

defineRoute({
  method: 'post', path: '/api/v1/pairing-codes', tag: 'Agent hub (003)', summary: 'Create a one-time, expiring pairing code',
  body: obj({ asAgentId }), status: 201,
  handler: async (_ctx, { principal, body }) => connections.createPairingCode(await actingAgent(principal, body.asAgentId, 'write')),
});

export const connectBody = obj({ pairingCode: { type: 'string', minLength: 4, maxLength: 32 }, approval: { type: 'string', enum: ['auto', 'require'] }, asAgentId }, ['pairingCode']);
defineRoute({
  method: 'post', path: '/api/v1/connections', tag: 'Agent hub (003)', summary: 'Redeem a pairing code: connect the two agents (both get agent.connected)',
  body: connectBody, status: 201, limit: 'pairing',
  handler: async (_ctx, { principal, body }) => connections.redeemPairingCode(await actingAgent(principal, body.asAgentId, 'write'), body.pairingCode, body.approval),
});
defineRoute({
  method: 'get', path: '/api/v1/connections', tag: 'Agent hub (003)', summary: "The acting agent's connections",
  query: obj({ asAgentId }),
  handler: async (_ctx, { principal, query }) => connections.listConnections(await actingAgent(principal, query.asAgentId, 'read')),
});
defineRoute({
  method: 'delete', path: '/api/v1/connections/:id', tag: 'Agent hub (003)', summary: 'Disconnect (agent.disconnected; open tasks between the two are cancelled)',
  query: obj({ asAgentId }),
  handler: async (_ctx, { principal, params, query }) => connections.deleteConnection(await actingAgent(principal, query.asAgentId, 'write'), params.id),
});

export const createTaskBody = obj({ toAgentId: { ...idOrHandle, description: 'The connected agent to ask (its id, or its handle)' }, title: nonEmpty(500), message: nonEmpty(100_000), asAgentId, repository: repositoryFields.repository, baseBranch: repositoryFields.base_branch }, ['toAgentId', 'title', 'message']);
defineRoute({
  method: 'post', path: '/api/v1/tasks', tag: 'Agent hub (003)', summary: 'Create a task for a connected agent',
  body: createTaskBody, status: 201, idempotent: true, limit: 'session',
  handler: async (_ctx, { principal, body }) => tasks.createTask(await actingAgent(principal, body.asAgentId, 'write'), body),
});
defineRoute({
  method: 'get', path: '/api/v1/tasks', tag: 'Agent hub (003)', summary: "Tasks of the acting agent (role=from: it asked; role=to: it was asked)",
  query: obj({ role: { type: 'string', enum: ['from', 'to'] }, status: taskStatus, asAgentId, limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 }, offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 } }),
  handler: async (_ctx, { principal, query }) => tasks.listTasks(await actingAgent(principal, query.asAgentId, 'read'), query),
});
defineRoute({
  method: 'get', path: '/api/v1/tasks/:taskId', tag: 'Agent hub (003)', summary: 'Get a task', query: obj({ asAgentId }),
  handler: async (_ctx, { principal, params, query }) => tasks.taskView(await tasks.requireTask(await actingAgent(principal, query.asAgentId, 'read'), params.taskId)),
});
defineRoute({
  method: 'post', path: '/api/v1/tasks/:taskId/status', tag: 'Agent hub (003)', summary: 'Report the task status (target agent)',
  body: obj({ status: { type: 'string', enum: ['working', 'input-required', 'completed', 'failed'] }, asAgentId }, ['status']),
  handler: async (_ctx, { principal, params, body }) => tasks.reportStatus(await actingAgent(principal, body.asAgentId, 'write'), params.taskId, body.status),
});
for (const action of ['approve', 'reject', 'cancel'] as const) {
  defineRoute({
    method: 'post', path: `/api/v1/tasks/:taskId/${action}`, tag: 'Agent hub (003)',
    summary: { approve: 'Approve a task awaiting approval (target agent)', reject: 'Reject a task awaiting approval (target agent)', cancel: 'Cancel a task (either agent)' }[action],
    body: obj({ asAgentId }),
    handler: async (_ctx, { principal, params, body }) => {
      const agent = await actingAgent(principal, body.asAgentId, 'write');
      if (action === 'approve') return tasks.approveTask(agent, params.taskId);
      if (action === 'reject') return tasks.rejectTask(agent, params.taskId);
      return tasks.cancelTask(agent, params.taskId);
    },
  });
}
defineRoute({
  method: 'get', path: '/api/v1/tasks/:taskId/messages', tag: 'Agent hub (003)', summary: 'Messages of a task', query: obj({ asAgentId }),
  handler: async (_ctx, { principal, params, query }) => tasks.listTaskMessages(await actingAgent(principal, query.asAgentId, 'read'), params.taskId),
});
defineRoute({
  method: 'post', path: '/api/v1/tasks/:taskId/messages', tag: 'Agent hub (003)', summary: 'Post a message in a task (message.created to the other agent)',
  body: obj({ content: nonEmpty(100_000), asAgentId }, ['content']), status: 201, idempotent: true,
  handler: async (_ctx, { principal, params, body }) => tasks.postTaskMessage(await actingAgent(principal, body.asAgentId, 'write'), params.taskId, body.content),
});

defineRoute({
  method: 'get', path: '/api/v1/updates', tag: 'Agent hub (003)', summary: "The acting agent's events after a cursor (recover what was missed while disconnected)",
  query: obj({ after: { type: 'string', pattern: '^[0-9]{1,18}$' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, asAgentId }),
  handler: async (_ctx, { principal, query }) => updatesFor((await actingAgent(principal, query.asAgentId, 'read')).id, query.after, query.limit),
});

defineRoute({
  method: 'get', path: '/debug/events', tag: 'Agent hub (003)', summary: 'Every hub event as server-sent events (admins: TROUPE_ADMIN_USERS)',
  stream: true, tokenFromQuery: true, query: obj({ access_token: { type: 'string', maxLength: 4000 } }),
  handler: async (ctx, { principal }) => {
    if (!isAdmin(principal)) throw forbidden('The debug stream is for admins (TROUPE_ADMIN_USERS)');
    ctx.state.quietLog = true;
    ctx.respond = false;
    const sse = new SseWriter(ctx.res);
    const stop = await listenRaw(debugChannel(), (raw) => {
      const d = JSON.parse(raw);
      sse.send(d.event.type, { ...d.event, agentId: d.agentId, cursor: d.cursor, createdAt: d.createdAt });
    });
    const keepalive = setInterval(() => sse.send('keepalive', { time: new Date().toISOString() }), KEEPALIVE_MS);
    // An expired token (or one of a user no longer listed) ends the stream within a period.
    const token = bearerToken(ctx.get('authorization')) ?? (typeof ctx.query.access_token === 'string' ? ctx.query.access_token : null);
    const unwatch = watchAccess(() => cachedCheck(token, 'debug', async () => {
      const now = await reauthenticate(token);
      return Boolean(now && isAdmin(now));
    }), () => sse.end());
    sse.onClose(() => {
      clearInterval(keepalive);
      unwatch();
      stop();
    });
    return undefined;
  },
});
