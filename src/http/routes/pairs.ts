/**
 * Seed 000 pair sessions, at the seed's paths (/pair-sessions) and under /api/v1. No project in
 * the path: an API key implies its project; a user names one with project_id (or belongs to one).
 */
import { defineRoute } from '../registry.js';
import { idOrHandle, nonEmpty, obj, pagination, uuid } from '../schema.js';
import { assertActsAsSelf, assertOwn, ownAgent, projectIdsOf, requireProject, resolveProject } from '../../services/access.js';
import { forbidden } from '../../domain/errors.js';
import type { Principal } from '../auth.js';
import type { PairRow } from '../../services/pairs.js';
import { createPair, endPair, listPairs, loadPairView, nudge, postTurn, requirePair, turnView } from '../../services/pairs.js';

const TAG = 'Pair sessions (000)';

/** A pair the caller may see: for an agent key, one it is part of (else 404). */
async function ownPair(principal: Principal, id: string): Promise<PairRow> {
  const p = await requirePair(await projectIdsOf(principal), id);
  return assertOwn(principal, p, [p.generator_id, p.reviewer_id], 'Pair session');
}

export const createPairBody = obj({
  generatorId: idOrHandle,
  reviewerId: idOrHandle,
  task: nonEmpty(100_000),
  drive: { type: 'boolean', description: 'the runtime plays the turns (two hosted agents)' },
  maxTurns: { type: 'integer', minimum: 2, maximum: 100, description: 'drive mode: generate + review turns before it is abandoned (default 6)' },
  project_id: uuid,
}, ['generatorId', 'reviewerId', 'task']);
export const turnBody = obj({
  agentId: nonEmpty(200),
  role: { type: 'string', enum: ['generate', 'review', 'interrupt'] },
  content: nonEmpty(100_000),
}, ['agentId', 'role', 'content']);
export const endBody = obj({
  outcome: { type: 'string', enum: ['completed', 'abandoned'] },
  qualityScore: { type: ['number', 'null'], minimum: 0, maximum: 1 },
}, ['outcome']);

for (const base of ['/pair-sessions', '/api/v1/pair-sessions']) {
  defineRoute({
    method: 'post', path: base, tag: TAG, summary: 'Create a pair session (generator + reviewer, one shared workspace sandbox)',
    body: createPairBody, status: 201, idempotent: true, limit: 'session',
    handler: async (_ctx, { principal, body }) => {
      const m = await resolveProject(principal, body.project_id, 'write');
      // An agent key pairs only itself with another agent, and plays its own turns.
      await assertActsAsSelf(principal, [body.generatorId, body.reviewerId]);
      if (body.drive && principal.kind === 'agent') throw forbidden("A driven pair runs both agents' sessions: a user creates it, not an agent API key");
      const pair = await createPair(m, body);
      return loadPairView(pair.id);
    },
  });

  defineRoute({
    method: 'get', path: base, tag: TAG, summary: "List pair sessions in the caller's projects, newest first",
    query: obj({ project_id: uuid, status: { type: 'string', enum: ['active', 'completed', 'abandoned'] }, ...pagination }),
    handler: async (_ctx, { principal, query }) => {
      const ids = query.project_id ? [(await requireProject(principal, query.project_id)).projectId] : await projectIdsOf(principal);
      // An agent key sees the pairs it is part of.
      return listPairs(ids, { ...query, participant: ownAgent(principal) });
    },
  });

  defineRoute({
    method: 'get', path: `${base}/:id`, tag: TAG, summary: 'Get a pair session with its turns',
    handler: async (_ctx, { principal, params }) => {
      const p = await ownPair(principal, params.id);
      await nudge(p);
      return loadPairView(p.id);
    },
  });

  defineRoute({
    method: 'post', path: `${base}/:id/turns`, tag: TAG,
    summary: 'Add a turn: generate and review alternate (generator first); interrupt any time, from anyone',
    body: turnBody, status: 201,
    handler: async (_ctx, { principal, params, body }) => {
      const p = await ownPair(principal, params.id);
      await requireProject(principal, p.project_id, 'write');
      await assertActsAsSelf(principal, body.agentId);
      return turnView(await postTurn(p, body));
    },
  });

  defineRoute({
    method: 'post', path: `${base}/:id/end`, tag: TAG, summary: 'End with an outcome (completed | abandoned) and an optional qualityScore in [0, 1]',
    body: endBody,
    handler: async (_ctx, { principal, params, body }) => {
      const p = await ownPair(principal, params.id);
      await requireProject(principal, p.project_id, 'write');
      await endPair(p, body.outcome, body.qualityScore);
      return loadPairView(p.id);
    },
  });
}
