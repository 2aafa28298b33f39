/** Seed 004 conversations: sessions seen from a project and an agent. */
import { defineRoute } from '../registry.js';
import { chatVisibility, requireVisibleSession } from '../../services/session-access.js';
import { nonEmpty, obj, pagination } from '../schema.js';
import { assertActsAsSelf, requireProject } from '../../services/access.js';
import { requireAgent } from '../../services/agents.js';
import { pauseSession, resumeSession, assertDirectMessages, sendMessage, stopSession } from '../../services/sessions.js';
import { conversationView, eventView, listSessionViews, withViewData } from '../../services/session-views.js';
import { loadEvents } from '../../db/session-store.js';

const P = '/api/v1/projects/:projectId';
const statusEnum = { type: 'string', enum: ['queued', 'running', 'idle', 'paused', 'completed', 'stopped', 'failed'] } as const;

export const listConversationsQuery = obj({ status: statusEnum, task_id: { type: 'string', maxLength: 200 }, ...pagination });
defineRoute({
  method: 'get', path: `${P}/agents/:agentId/conversations`, tag: 'Conversations (004)', summary: "List an agent's conversations, newest first",
  query: listConversationsQuery,
  handler: async (_ctx, { principal, params, query }) => {
    await requireProject(principal, params.projectId, 'read');
    const agent = await requireAgent(params.projectId, params.agentId);
    await assertActsAsSelf(principal, agent.id);
    const { rows, total } = await listSessionViews({
      projectIds: [params.projectId], agentIds: [agent.id], statuses: query.status ? [query.status] : undefined, taskId: query.task_id,
      order: 'newest', limit: query.limit, offset: query.offset, withTotal: true, chats: await chatVisibility(principal, [params.projectId]),
    });
    return { conversations: rows.map(conversationView), total };
  },
});

export const getConversationQuery = obj({
  include_events: { type: 'boolean', default: false },
  event_limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  event_offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
});
defineRoute({
  method: 'get', path: `${P}/conversations/:conversationId`, tag: 'Conversations (004)', summary: 'Get a conversation, optionally with its events',
  query: getConversationQuery,
  handler: async (_ctx, { principal, params, query }) => {
    await requireProject(principal, params.projectId, 'read');
    const s = await requireVisibleSession(principal, [params.projectId], params.conversationId);
    const out: Record<string, unknown> = conversationView(await withViewData(s));
    if (query.include_events) {
      const events = await loadEvents(s.id, { limit: query.event_limit, offset: query.event_offset });
      out.events = events.map(eventView);
    }
    return out;
  },
});

// Seed 004 names these event_limit / event_offset (as on GET conversations/:id); both spellings
// work, and the event_ ones win when a request gives both.
export const eventsQuery = obj({
  ...pagination,
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  event_limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'Alias of limit (seed 004)' },
  event_offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, description: 'Alias of offset (seed 004)' },
});
defineRoute({
  method: 'get', path: `${P}/conversations/:conversationId/events`, tag: 'Conversations (004)', summary: 'Paginated events of a conversation',
  query: eventsQuery,
  handler: async (_ctx, { principal, params, query }) => {
    await requireProject(principal, params.projectId, 'read');
    const s = await requireVisibleSession(principal, [params.projectId], params.conversationId);
    const limit = query.event_limit ?? query.limit;
    const offset = query.event_offset ?? query.offset;
    const events = await loadEvents(s.id, { limit, offset });
    const total = s.next_event_index as number;
    return { events: events.map(eventView), total, has_more: offset + events.length < total };
  },
});

for (const action of ['pause', 'resume', 'stop'] as const) {
  defineRoute({
    method: 'post', path: `${P}/conversations/:conversationId/${action}`, tag: 'Conversations (004)',
    summary: { pause: 'Pause: abort at once, freeze the container, free the worker', resume: 'Resume a paused conversation', stop: 'Stop for good and destroy the container' }[action],
    body: obj({}),
    handler: async (_ctx, { principal, params }) => {
      await requireProject(principal, params.projectId, 'write');
      const s = await requireVisibleSession(principal, [params.projectId], params.conversationId);
      if (action === 'pause') await pauseSession(s);
      if (action === 'resume') await resumeSession(s);
      if (action === 'stop') await stopSession(s);
      // The seed's bodies; resume answers "running" though the session may briefly be queued.
      return { status: { pause: 'paused', resume: 'running', stop: 'stopped' }[action] };
    },
  });
}

export const conversationMessageBody = obj({ message: nonEmpty(100_000) }, ['message']);
defineRoute({
  method: 'post', path: `${P}/conversations/:conversationId/message`, tag: 'Conversations (004)',
  summary: 'Send a message (delivered at the next turn boundary; wakes an idle conversation; queued while paused)',
  body: conversationMessageBody, idempotent: true,
  handler: async (_ctx, { principal, params, body }) => {
    await requireProject(principal, params.projectId, 'write');
    const s = await requireVisibleSession(principal, [params.projectId], params.conversationId);
    assertDirectMessages(s);
    const { session, event } = await sendMessage(s, body.message);
    return { status: session.status, message_id: event.id, event_index: event.event_index };
  },
});
