/** Seed 002: sandboxes and the sessions inside them, plus POST /api/v1/sessions (a session with its own sandbox). */
import { defineRoute } from '../registry.js';
import { chatVisibility, requireVisibleSession } from '../../services/session-access.js';
import type { Principal } from '../auth.js';
import { idOrHandle, obj, repositoryFields, uuid } from '../schema.js';
import { getSession, loadEvents } from '../../db/session-store.js';
import { badRequest, conflict, isDomainError, upstreamFailed } from '../../domain/errors.js';
import { config } from '../../config.js';
import { assertActsAsSelf, assertOwn, ownAgent, projectIdsOf, requireProject, resolveProject } from '../../services/access.js';
import { requireAgent } from '../../services/agents.js';
import { getSandboxRow, listSandboxes, serializeSandbox } from '../../services/sandboxes.js';
import { createSandbox, deleteSandbox, pauseSandbox, resumeSandbox } from '../../services/sandbox-lifecycle.js';
import {
  createSession, interruptSession, assertDirectMessages, sendMessage, waitForRest,
} from '../../services/sessions.js';
import { listSessionViews, messagesPage, session002View, withViewData } from '../../services/session-views.js';
import { messagesView } from '../../runtime/context.js';

const metadata = { type: 'object', maxProperties: 100 } as const;
const env = { type: 'object', maxProperties: 100, additionalProperties: { type: 'string', maxLength: 10_000 }, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, writeOnly: true } as const;
const limits = obj({
  memory_mb: { type: 'integer', minimum: 16, maximum: 65536 },
  cpus: { type: 'number', exclusiveMinimum: 0, maximum: 64 },
  pids: { type: 'integer', minimum: 8, maximum: 100_000 },
  network: { type: 'string', enum: ['none', 'bridge'] },
});

export const createSandboxBody = obj({
  agent: idOrHandle,
  project_id: uuid,
  image: { type: 'string', minLength: 1, maxLength: 300 },
  env, limits, metadata,
  timeout: { type: 'integer', minimum: 1, maximum: 7 * 24 * 3600, description: 'seconds' },
}, ['agent']);

defineRoute({
  method: 'post', path: '/api/v1/sandboxes', tag: 'Sandboxes (002)', summary: "Create a sandbox for an agent (its container starts now)",
  body: createSandboxBody, status: 201, limit: 'session',
  handler: async (_ctx, { principal, body }) => {
    const m = await resolveProject(principal, body.project_id, 'write');
    await assertActsAsSelf(principal, body.agent);
    const agent = await requireAgent(m.projectId, body.agent).catch(() => { throw badRequest(`Unknown agent "${body.agent}" in this project`); });
    return serializeSandbox(await createSandbox(m, agent, { image: body.image, env: body.env, limits: body.limits, metadata: body.metadata, timeout: body.timeout }));
  },
});

defineRoute({
  method: 'get', path: '/api/v1/sandboxes', tag: 'Sandboxes (002)', summary: "List sandboxes in the caller's projects",
  query: obj({ project_id: uuid, state: { type: 'string', enum: ['active', 'paused', 'stopped'] } }),
  handler: async (_ctx, { principal, query }) => {
    const ids = query.project_id ? [(await requireProject(principal, query.project_id)).projectId] : await projectIdsOf(principal);
    return (await listSandboxes(ids, { state: query.state, agentId: ownAgent(principal) ?? undefined })).map(serializeSandbox);
  },
});

defineRoute({
  method: 'get', path: '/api/v1/sandboxes/:id', tag: 'Sandboxes (002)', summary: 'Get a sandbox',
  handler: async (_ctx, { principal, params }) => serializeSandbox(await ownSandbox(principal, params.id)),
});

/** A sandbox the caller may see: for an agent key, only its own agent's (else 404). */
async function ownSandbox(principal: Principal, id: string) {
  const sb = await getSandboxRow(await projectIdsOf(principal), id);
  return assertOwn(principal, sb, [sb.agent_id], 'Sandbox');
}

defineRoute({
  method: 'delete', path: '/api/v1/sandboxes/:id', tag: 'Sandboxes (002)', summary: 'Delete a sandbox: stop its sessions, remove its container',
  handler: async (_ctx, { principal, params }) => {
    const sb = await ownSandbox(principal, params.id);
    await requireProject(principal, sb.project_id, 'write');
    return serializeSandbox(await deleteSandbox(sb));
  },
});

for (const action of ['pause', 'resume'] as const) {
  defineRoute({
    method: 'post', path: `/api/v1/sandboxes/:id/${action}`, tag: 'Sandboxes (002)',
    summary: action === 'pause' ? 'Freeze the sandbox and pause its sessions' : 'Unfreeze the sandbox and resume its paused sessions',
    body: obj({}),
    handler: async (_ctx, { principal, params }) => {
      const sb = await ownSandbox(principal, params.id);
      await requireProject(principal, sb.project_id, 'write');
      return serializeSandbox(await (action === 'pause' ? pauseSandbox(sb) : resumeSandbox(sb)));
    },
  });
}

export const createSandboxSessionBody = obj({ metadata, message: { type: 'string', minLength: 1, maxLength: 100_000 } });
defineRoute({
  method: 'post', path: '/api/v1/sandboxes/:id/sessions', tag: 'Sandboxes (002)', summary: 'Start a session in a sandbox (several may share one)',
  body: createSandboxSessionBody, status: 201, idempotent: true, limit: 'session',
  handler: async (ctx, { principal, params, body }) => {
    const sb = await ownSandbox(principal, params.id);
    const m = await requireProject(principal, sb.project_id, 'write');
    if (sb.state === 'stopped') throw conflict('This sandbox was deleted; create a new one');
    const s = await createSession(m, { agentRef: sb.agent_id!, sandbox: sb, metadata: body.metadata, message: body.message, idempotencyKey: ctx.get('idempotency-key') || undefined });
    return session002View(await withViewData(s));
  },
});

defineRoute({
  method: 'get', path: '/api/v1/sandboxes/:id/sessions', tag: 'Sandboxes (002)', summary: 'List the sessions of a sandbox',
  handler: async (_ctx, { principal, params }) => {
    const sb = await ownSandbox(principal, params.id);
    const self = ownAgent(principal); // a pair's workspace also holds the other agent's sessions
    const { rows } = await listSessionViews({ sandboxId: sb.id, agentIds: self ? [self] : undefined, order: 'oldest', limit: 1000, chats: await chatVisibility(principal, [sb.project_id]) });
    return rows.map(session002View);
  },
});

export const createSessionBody = obj({
  agent_id: idOrHandle, project_id: uuid, message: { type: 'string', minLength: 1, maxLength: 100_000 }, metadata, ...repositoryFields,
}, ['agent_id']);
defineRoute({
  method: 'post', path: '/api/v1/sessions', tag: 'Sessions (002)', summary: 'Create a session with its own new sandbox in one call',
  body: createSessionBody, status: 201, idempotent: true, limit: 'session',
  handler: async (ctx, { principal, body }) => {
    const m = await resolveProject(principal, body.project_id, 'write');
    await assertActsAsSelf(principal, body.agent_id);
    const s = await createSession(m, { agentRef: body.agent_id, message: body.message, metadata: body.metadata, repository: body.repository, baseBranch: body.base_branch, idempotencyKey: ctx.get('idempotency-key') || undefined });
    return session002View(await withViewData(s));
  },
});

export const getSession002Query = obj({
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'The newest this many messages (default 100)' },
  before: { type: 'integer', minimum: 0, maximum: 2_000_000_000, description: 'Only messages before this event_index: messages_before of the previous page' },
});
defineRoute({
  method: 'get', path: '/api/v1/sessions/:sid', tag: 'Sessions (002)',
  summary: 'Get a session with its newest messages (content blocks, oldest first; ?limit= default 100, older pages with ?before=messages_before)',
  query: getSession002Query,
  handler: async (_ctx, { principal, params, query }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.sid);
    const page = await messagesPage(s.id, { limit: query.limit, before: query.before });
    return { ...session002View(await withViewData(s)), messages: page.messages, messages_has_more: page.has_more, messages_before: page.before };
  },
});

const block = {
  oneOf: [
    obj({ type: { const: 'text' }, text: { type: 'string', maxLength: 100_000 } }, ['type', 'text']),
    obj({ type: { const: 'image' }, media_type: { type: 'string', enum: ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] }, data: { type: 'string', maxLength: 5_000_000 } }, ['type', 'media_type', 'data']),
  ],
} as const;
export const sendSessionMessageBody = obj({ role: { const: 'user' }, content: { type: 'array', minItems: 1, maxItems: 50, items: block } }, ['role', 'content']);
defineRoute({
  method: 'post', path: '/api/v1/sessions/:sid/messages', tag: 'Sessions (002)',
  summary: "Send a message and wait for the agent's reply message, at most TROUPE_MAX_WAIT_SECONDS (default 120) or ?timeout= if shorter; " +
    'past that, or with ?wait=false, 202 with where to follow it (stream_url, events_url)',
  body: sendSessionMessageBody,
  query: obj({ wait: { type: 'boolean', default: true }, timeout: { type: 'integer', minimum: 1, maximum: 3600, description: 'seconds; capped at TROUPE_MAX_WAIT_SECONDS' } }),
  idempotent: true,
  handler: async (ctx, { principal, params, body, query }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.sid);
    await requireProject(principal, s.project_id, 'write');
    assertDirectMessages(s);
    const text = body.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n');
    const { session, event } = await sendMessage(s, text, { content: body.content });
    // Where to follow the reply when we do not wait for it: the stream from just after this
    // message (Last-Event-ID = its event_index), or the events from it on.
    const accepted = (status: string) => {
      ctx.state.statusOverride = 202;
      return {
        message_id: event.id, session_id: s.id, status, event_index: event.event_index,
        stream_url: `/api/v1/sessions/${s.id}/stream?last_event_id=${event.event_index}`,
        events_url: `/api/v1/projects/${s.project_id}/conversations/${s.id}/events?offset=${event.event_index + 1}`,
      };
    };
    if (!query.wait || session.status === 'paused') return accepted(session.status);
    // A request held open for long ties up a connection (and a proxy's): bounded by configuration.
    const waitSeconds = Math.min(query.timeout ?? config.maxWaitSeconds, config.maxWaitSeconds);
    const rested = await waitForRest(s.id, waitSeconds * 1000).catch((err) => {
      if (isDomainError(err, 'timeout')) return null;
      throw err;
    });
    if (!rested) return accepted((await getSession(s.id))?.status ?? session.status);
    const after = (await loadEvents(s.id, { after: event.event_index }));
    const reply = messagesView(s.id, after).filter((msg) => msg.role === 'assistant').pop();
    if (!reply) {
      if (rested.status === 'failed') throw upstreamFailed(`The session failed: ${rested.error}`);
      return { id: null, session_id: s.id, role: 'assistant', content: [], timestamp: new Date().toISOString(), status: rested.status };
    }
    return reply;
  },
});

defineRoute({
  method: 'post', path: '/api/v1/sessions/:sid/interrupt', tag: 'Sessions (002)', summary: 'Abort the current model call or tool; the session becomes idle',
  body: obj({}),
  handler: async (_ctx, { principal, params }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.sid);
    await requireProject(principal, s.project_id, 'write');
    return session002View(await withViewData(await interruptSession(s)));
  },
});
