/** Seed 001: /api/sessions, in its own status words (created, active, paused, completed, failed, stopped). */
import { defineRoute } from '../registry.js';
import { chatVisibility, requireVisibleSession } from '../../services/session-access.js';
import { idOrHandle, nonEmpty, obj, repositoryFields, uuid } from '../schema.js';
import { assertActsAsSelf, ownAgent, projectIdsOf, requireProject, resolveProject } from '../../services/access.js';
import { findAgent } from '../../services/agents.js';
import { createSession, deleteSession, assertDirectMessages, sendMessage, updateSession001 } from '../../services/sessions.js';
import { FROM_001, listSessionViews, session001View, withViewData } from '../../services/session-views.js';
import { getSession } from '../../db/session-store.js';

const status001 = { type: 'string', enum: Object.keys(FROM_001) } as const;

export const list001Query = obj({ task_id: { type: 'string', maxLength: 200 }, agent_id: idOrHandle, status: status001, project_id: uuid });
defineRoute({
  method: 'get', path: '/api/sessions', tag: 'Sessions (001)', summary: 'List sessions (filters: task_id, agent_id, status)',
  query: list001Query,
  handler: async (_ctx, { principal, query }) => {
    const ids = query.project_id ? [(await requireProject(principal, query.project_id)).projectId] : await projectIdsOf(principal);
    const self = ownAgent(principal); // an agent key sees its own sessions only
    let agentIds = self ? [self] : undefined;
    if (query.agent_id) {
      const named: string[] = [];
      for (const p of ids) {
        const a = await findAgent(p, query.agent_id);
        if (a) named.push(a.id);
      }
      agentIds = agentIds ? agentIds.filter((id) => named.includes(id)) : named;
    }
    const { rows } = await listSessionViews({
      projectIds: ids, agentIds, taskId: query.task_id, statuses: query.status ? FROM_001[query.status] : undefined, order: 'newest', limit: 500,
      chats: await chatVisibility(principal, ids),
    });
    return { sessions: rows.map(session001View) };
  },
});

export const create001Body = obj({
  agent_id: idOrHandle, task_id: { type: 'string', maxLength: 200 }, prompt: { type: 'string', minLength: 1, maxLength: 100_000 },
  project_id: uuid, data: { type: 'object', maxProperties: 100 }, ...repositoryFields,
}, ['agent_id']);
defineRoute({
  method: 'post', path: '/api/sessions', tag: 'Sessions (001)', summary: 'Create a session (its prompt, if any, is the first message)',
  body: create001Body, status: 201, idempotent: true, limit: 'session',
  handler: async (ctx, { principal, body }) => {
    const m = await resolveProject(principal, body.project_id, 'write');
    await assertActsAsSelf(principal, body.agent_id);
    const s = await createSession(m, { agentRef: body.agent_id, prompt: body.prompt, taskId: body.task_id, data: body.data, repository: body.repository, baseBranch: body.base_branch, idempotencyKey: ctx.get('idempotency-key') || undefined });
    return session001View(await withViewData(s));
  },
});

defineRoute({
  method: 'get', path: '/api/sessions/:id', tag: 'Sessions (001)', summary: 'Get a session',
  handler: async (_ctx, { principal, params }) => session001View(await withViewData(await requireVisibleSession(principal, await projectIdsOf(principal), params.id))),
});

export const patch001Body = {
  ...obj({ status: { type: 'string', enum: ['active', 'paused', 'completed', 'stopped'] }, data: { type: 'object', maxProperties: 100 }, prompt: nonEmpty(100_000) }),
  minProperties: 1,
} as const;
defineRoute({
  method: 'patch', path: '/api/sessions/:id', tag: 'Sessions (001)',
  summary: 'Update a session: status (paused pauses, active resumes, completed ends, stopped stops), data (merged), prompt',
  body: patch001Body,
  handler: async (_ctx, { principal, params, body }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.id);
    await requireProject(principal, s.project_id, 'write');
    await updateSession001(s, { status: body.status, data: body.data, prompt: body.prompt });
    return session001View(await withViewData((await getSession(s.id))!));
  },
});

defineRoute({
  method: 'delete', path: '/api/sessions/:id', tag: 'Sessions (001)', summary: 'Delete a session (stops it and removes its container)',
  handler: async (_ctx, { principal, params }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.id);
    await requireProject(principal, s.project_id, 'write');
    await deleteSession(s);
    return { id: s.id, deleted: true };
  },
});

export const message001Body = obj({ content: nonEmpty(100_000) }, ['content']);
defineRoute({
  method: 'post', path: '/api/sessions/:id/message', tag: 'Sessions (001)', summary: 'Send a message to a session',
  body: message001Body, idempotent: true,
  handler: async (_ctx, { principal, params, body }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.id);
    await requireProject(principal, s.project_id, 'write');
    assertDirectMessages(s);
    const { event } = await sendMessage(s, body.content);
    return { message_id: event.id, status: 'sent', timestamp: event.created_at };
  },
});
