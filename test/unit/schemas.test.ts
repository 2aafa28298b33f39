/**
 * Request schemas, without a server: the helpers in src/http/schema.ts, and the route declarations
 * themselves (src/http/registry.ts), compiled by the same ajv instances the api uses. Loading the
 * routes loads the services behind them, which must open no connection at import time: the first
 * test checks that, so this tier stays free of services.
 */
import { expect } from 'chai';
import { isDomainError } from '../../src/domain/errors.js';
import type { CompiledRoute } from '../../src/http/registry.js';
import { assertValid, compileBody, compileQuery, nonEmpty, obj, pagination } from '../../src/http/schema.js';

let routes: CompiledRoute[];
let buildOpenApi: () => Record<string, any>;

const route = (method: string, path: string): CompiledRoute => {
  const r = routes.find((x) => x.method === method && x.path === path);
  if (!r) throw new Error(`no route ${method} ${path}`);
  return r;
};

/** null when valid, else the 400's message and details (as the error envelope carries them). */
function check(validate: CompiledRoute['validateBody'], value: unknown, where: 'body' | 'query' = 'body') {
  try {
    assertValid(validate!, value, where);
    return null;
  } catch (err) {
    if (!isDomainError(err, 'invalid')) throw err;
    return { message: err.message, details: err.details as Array<{ path: string; message: string }> };
  }
}

describe('request schemas', () => {
  before(async () => {
    const connections = () => process.getActiveResourcesInfo().filter((r) => /TCP|Pipe|Socket/i.test(r));
    const before = connections().length;
    await import('../../src/http/routes/index.js');
    ({ routes } = await import('../../src/http/registry.js'));
    ({ buildOpenApi } = await import('../../src/http/openapi.js'));
    expect(connections().length, 'loading the routes opened a connection').to.equal(before);
  });

  describe('helpers (schema.ts)', () => {
    const body = compileBody(obj({ name: nonEmpty(10), n: { type: 'integer' } }, ['name']));
    const query = compileQuery(obj({ ...pagination, flag: { type: 'boolean', default: false } }));

    it('bodies are strict: no coercion, unknown fields and missing fields named in details', () => {
      expect(check(body, { name: 'a', n: 1 })).to.equal(null);
      expect(check(body, { name: 'a', n: '1' })!.details).to.deep.equal([{ path: '/n', message: 'must be integer' }]);
      expect(check(body, { name: 'a', extra: 1 })).to.deep.equal({ message: 'Invalid request body: unknown field "extra"', details: [{ path: '/', message: 'unknown field "extra"' }] });
      expect(check(body, {})!.message).to.equal('Invalid request body: missing required field "name"');
      expect(check(body, { name: '' })!.details[0].path).to.equal('/name');
      expect(check(body, { name: 'x'.repeat(11) })).not.to.equal(null);
    });

    it('every error is reported at once (allErrors)', () => {
      expect(check(body, { name: 5, n: 'x', z: 1 })!.details).to.have.length(3);
    });

    it('queries arrive as text: coerced, and defaults filled in', () => {
      const q: Record<string, unknown> = { limit: '10', flag: 'true' };
      expect(check(query, q, 'query')).to.equal(null);
      expect(q).to.deep.equal({ limit: 10, offset: 0, flag: true });
      expect(check(query, { limit: '0' }, 'query')!.message).to.match(/^Invalid request query: \/limit must be >= 1/);
      expect(check(query, { limit: '501' }, 'query')).not.to.equal(null);
      expect(check(query, { limit: 'ten' }, 'query')).not.to.equal(null);
      expect(check(query, { offset: '-1' }, 'query')).not.to.equal(null);
    });
  });

  describe('the routes as declared (registry.ts)', () => {
    it('every body and query schema is compiled and refuses unknown fields', () => {
      expect(routes.length).to.be.greaterThan(50);
      for (const r of routes) {
        const name = `${r.method.toUpperCase()} ${r.path}`;
        if (r.body) {
          expect(r.validateBody, name).to.be.a('function');
          expect(r.body.additionalProperties, name).to.equal(false);
          expect(check(r.validateBody, { '': 1, surely_not_a_field: true }), name).not.to.equal(null);
        }
        if (r.query) {
          expect(r.validateQuery, name).to.be.a('function');
          expect(r.query.additionalProperties, name).to.equal(false);
        }
      }
    });

    it('every POST, PATCH and PUT validates its body', () => {
      const missing = routes.filter((r) => ['post', 'patch', 'put'].includes(r.method) && !r.body).map((r) => `${r.method} ${r.path}`);
      expect(missing).to.deep.equal([]);
    });

    it('no two routes share a method and path, and the OpenAPI document lists each', () => {
      const keys = routes.map((r) => `${r.method} ${r.path}`);
      expect(new Set(keys).size).to.equal(keys.length);
      const doc = buildOpenApi();
      for (const r of routes) {
        const path = r.path.replace(/:([A-Za-z_]+)/g, '{$1}');
        expect(doc.paths[path]?.[r.method], `${r.method} ${path}`).to.be.an('object');
        if (r.body) expect(doc.paths[path][r.method].requestBody.content['application/json'].schema).to.equal(r.body);
      }
    });

    it('tasks (003): camelCase fields, all three required', () => {
      const v = route('post', '/api/v1/tasks').validateBody;
      expect(check(v, { toAgentId: 'bob', title: 'Review', message: 'Please' })).to.equal(null);
      expect(check(v, { toAgentId: 'bob', title: 'Review' })!.message).to.match(/missing required field "message"/);
      expect(check(v, { to_agent_id: 'bob', title: 'Review', message: 'x' })).not.to.equal(null);
      const status = route('post', '/api/v1/tasks/:taskId/status').validateBody;
      expect(check(status, { status: 'working' })).to.equal(null);
      expect(check(status, { status: 'done' })).not.to.equal(null);
    });

    it('pair sessions (000): turn roles and the end outcome', () => {
      const turn = route('post', '/pair-sessions/:id/turns').validateBody;
      for (const role of ['generate', 'review', 'interrupt']) expect(check(turn, { agentId: 'a', role, content: 'x' }), role).to.equal(null);
      expect(check(turn, { agentId: 'a', role: 'chat', content: 'x' })).not.to.equal(null);
      const end = route('post', '/pair-sessions/:id/end').validateBody;
      expect(check(end, { outcome: 'completed', qualityScore: 0.5 })).to.equal(null);
      expect(check(end, { outcome: 'abandoned' })).to.equal(null);
      expect(check(end, { outcome: 'completed', qualityScore: 1.5 })).not.to.equal(null);
      expect(check(end, { outcome: 'won' })).not.to.equal(null);
    });

    it('messages: 004 wants a non-empty string, 002 content blocks from the user', () => {
      const m004 = route('post', '/api/v1/projects/:projectId/conversations/:conversationId/message').validateBody;
      expect(check(m004, { message: 'hi' })).to.equal(null);
      expect(check(m004, { message: '' })).not.to.equal(null);
      expect(check(m004, { message: 5 })).not.to.equal(null);
      const m002 = route('post', '/api/v1/sessions/:sid/messages').validateBody;
      expect(check(m002, { role: 'user', content: [{ type: 'text', text: 'hi' }] })).to.equal(null);
      expect(check(m002, { role: 'user', content: [{ type: 'image', media_type: 'image/png', data: 'AA==' }] })).to.equal(null);
      expect(check(m002, { role: 'assistant', content: [{ type: 'text', text: 'hi' }] })).not.to.equal(null);
      expect(check(m002, { role: 'user', content: [] })).not.to.equal(null);
      expect(check(m002, { role: 'user', content: [{ type: 'image', media_type: 'image/bmp', data: 'AA==' }] })).not.to.equal(null);
    });

    it('001 filters speak 001 words; the 004 events route takes seed 004\'s event_limit / event_offset', () => {
      const list001 = route('get', '/api/sessions').validateQuery;
      expect(check(list001, { status: 'created' }, 'query')).to.equal(null);
      expect(check(list001, { status: 'queued' }, 'query')).not.to.equal(null);
      const events = route('get', '/api/v1/projects/:projectId/conversations/:conversationId/events').validateQuery;
      const q: Record<string, unknown> = { event_limit: '5', event_offset: '2' };
      expect(check(events, q, 'query')).to.equal(null);
      expect(q).to.deep.equal({ event_limit: 5, event_offset: 2, limit: 100, offset: 0 });
      expect(check(events, { event_limit: '0' }, 'query')).not.to.equal(null);
      expect(check(events, { event_limit: '1001' }, 'query')).not.to.equal(null);
    });
  });
});
