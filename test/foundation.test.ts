import { expect } from 'chai';
import http from 'node:http';
import knexFactory from 'knex';
import { apiServer, call, newProject, newAgent, addMember, newUser, sessionWorker, snapshotCounts, uniq, waitFor } from './support/harness.js';
import { db } from '../src/db/knex.js';

describe('foundation: identity, projects, agents', () => {
  describe('auth', () => {
    it('rejects missing, malformed and forged tokens with 401 and the envelope', async () => {
      for (const token of [undefined, 'nonsense', 'trp_notakey', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged']) {
        const r = await call('GET', '/api/v1/projects', { token });
        expect(r.status, String(token)).to.equal(401);
        expect(r.body.error).to.be.a('string');
      }
    });

    it('health, readiness, metrics and openapi need no token', async () => {
      expect((await call('GET', '/healthz')).body).to.deep.equal({ status: 'ok' });
      // Docker is the workers' business: readiness reports it from their heartbeats.
      await sessionWorker();
      const ready = await waitFor('a worker heartbeat', async () => {
        const r = await call('GET', '/readyz');
        return r.body.workers?.alive > 0 ? r : null;
      }, 10_000);
      expect(ready.status).to.equal(200);
      expect(ready.body.checks).to.deep.equal({ postgres: true, redis: true, docker: true });
      const metrics = await call('GET', '/metrics');
      expect(metrics.status).to.equal(200);
      expect(String(metrics.body)).to.contain('troupe_http_request_duration_seconds');
    });

    it('npm run token signs a JWT the API accepts', async () => {
      const { execFileSync } = await import('node:child_process');
      const token = execFileSync('npx', ['tsx', 'scripts/token.ts', '--user', 'cli-user'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const r = await call('POST', '/api/v1/projects', { token, body: { name: 'from-cli' } });
      expect(r.status).to.equal(201);
      expect(r.body.created_by).to.equal('cli-user');
    });
  });

  describe('projects and members', () => {
    it('creates a project owned by its creator and lists it only for members', async () => {
      const { owner, projectId } = await newProject();
      const mine = await call('GET', '/api/v1/projects', { token: owner.token });
      expect(mine.body.map((p: any) => p.id)).to.include(projectId);
      const stranger = await newUser();
      const theirs = await call('GET', '/api/v1/projects', { token: stranger.token });
      expect(theirs.body.map((p: any) => p.id)).to.not.include(projectId);
      expect((await call('GET', `/api/v1/projects/${projectId}`, { token: stranger.token })).status).to.equal(404);
      expect((await call('GET', `/api/v1/projects/${projectId}`, { token: owner.token })).body.role).to.equal('owner');
    });

    it('viewers read but cannot write (403); non-admins cannot add members', async () => {
      const { owner, projectId } = await newProject();
      const viewer = await addMember(projectId, owner.token, 'viewer');
      const member = await addMember(projectId, owner.token, 'member');
      expect((await call('GET', `/api/v1/projects/${projectId}/agents`, { token: viewer.token })).status).to.equal(200);
      const before = await snapshotCounts(projectId);
      const w = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: viewer.token, body: { name: 'x' } });
      expect(w.status).to.equal(403);
      expect(w.body.error).to.match(/viewer/i);
      const m = await call('POST', `/api/v1/projects/${projectId}/members`, { token: member.token, body: { user_id: 'someone', role: 'viewer' } });
      expect(m.status).to.equal(403);
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
    });

    it('keeps at least one owner', async () => {
      const { owner, projectId } = await newProject();
      const members = await call('GET', `/api/v1/projects/${projectId}/members`, { token: owner.token });
      const me = members.body.find((m: any) => m.user_id === owner.id);
      const r = await call('PATCH', `/api/v1/projects/${projectId}/members/${me.id}`, { token: owner.token, body: { role: 'member' } });
      expect(r.status).to.equal(409);
    });
  });

  describe('agents (seed 004)', () => {
    it('creates an agent with its member row; secrets never come back', async () => {
      const { owner, projectId } = await newProject();
      const r = await call('POST', `/api/v1/projects/${projectId}/agents`, {
        token: owner.token,
        body: {
          name: 'Dev Bot', handle: 'dev-bot', agent_type_id: 'developer', llm_provider: 'anthropic', llm_model: 'claude-sonnet-4-6',
          llm_api_key: 'sk-ant-SECRET-123', system_prompt: 'You are a senior software engineer...', can_clone_repos: true,
          can_create_prs: false, max_iterations: 40, timeout_minutes: 30, project_role_id: null,
        },
      });
      expect(r.status).to.equal(201);
      expect(r.body).to.include({ name: 'Dev Bot', handle: 'dev-bot', llm_provider: 'anthropic', has_llm_api_key: true, max_iterations: 40 });
      expect(r.body.agent_type).to.include({ slug: 'developer', name: 'Developer' });
      expect(JSON.stringify(r.body)).to.not.contain('SECRET');
      expect(r.body).to.not.have.property('llm_api_key');
      const member = await db('project_members').where({ id: r.body.member_id }).first();
      expect(member).to.include({ member_type: 'agent', agent_id: r.body.id, project_id: projectId });
      const row = await db('agents').where({ id: r.body.id }).first();
      expect(row.llm_api_key_sealed).to.be.a('string').and.not.contain('SECRET');
      // by handle and by id
      for (const ref of ['dev-bot', r.body.id]) {
        const g = await call('GET', `/api/v1/projects/${projectId}/agents/${ref}`, { token: owner.token });
        expect(g.status).to.equal(200);
        expect(g.body).to.have.property('mcp_servers').that.is.an('array');
        expect(JSON.stringify(g.body)).to.not.contain('SECRET');
      }
      const list = await call('GET', `/api/v1/projects/${projectId}/agents`, { token: owner.token });
      expect(list.body).to.have.length(1);
      expect(JSON.stringify(list.body)).to.not.contain('SECRET');
    });

    it('rejects duplicate handles with 409', async () => {
      const { owner, projectId } = await newProject();
      await newAgent(projectId, owner.token, { handle: 'same' });
      const r = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, body: { name: 'b', handle: 'same' } });
      expect(r.status).to.equal(409);
    });

    it('updates, then soft-deletes the agent and its member', async () => {
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token, { handle: 'bot' });
      const p = await call('PATCH', `/api/v1/projects/${projectId}/agents/bot`, { token: owner.token, body: { max_iterations: 7, llm_api_key: 'sk-NEW-SECRET' } });
      expect(p.status).to.equal(200);
      expect(p.body.max_iterations).to.equal(7);
      expect(JSON.stringify(p.body)).to.not.contain('NEW-SECRET');
      const d = await call('DELETE', `/api/v1/projects/${projectId}/agents/${a.id}`, { token: owner.token });
      expect(d.status).to.equal(200);
      expect((await call('GET', `/api/v1/projects/${projectId}/agents/${a.id}`, { token: owner.token })).status).to.equal(404);
      const row = await db('agents').where({ id: a.id }).first();
      expect(row.deleted_at).to.not.equal(null);
      expect((await db('project_members').where({ id: a.member_id }).first()).deleted_at).to.not.equal(null);
    });

    it("another project's agent is 404, even by id", async () => {
      const one = await newProject();
      const two = await newProject();
      const a = await newAgent(one.projectId, one.owner.token);
      expect((await call('GET', `/api/v1/projects/${two.projectId}/agents/${a.id}`, { token: two.owner.token })).status).to.equal(404);
      expect((await call('GET', `/api/v1/projects/${one.projectId}/agents/${a.id}`, { token: two.owner.token })).status).to.equal(404);
      expect((await call('PATCH', `/api/v1/projects/${one.projectId}/agents/${a.id}`, { token: two.owner.token, body: { name: 'x' } })).status).to.equal(404);
    });

    const badBodies: Array<[string, unknown, number]> = [
      ['missing name', { handle: 'x' }, 400],
      ['wrong type', { name: 42 }, 400],
      ['unknown field', { name: 'x', favourite_colour: 'red' }, 400],
      ['bad enum', { name: 'x', llm_provider: 'gemini' }, 400],
      ['bad handle', { name: 'x', handle: 'Has Spaces' }, 400],
      ['negative limit', { name: 'x', max_iterations: -1 }, 400],
      ['bad url', { name: 'x', webhook_url: 'not a url' }, 400],
      ['array body', [1, 2], 400],
      ['bad agent type', { name: 'x', agent_type_id: 'nope' }, 400],
    ];
    for (const [label, body, status] of badBodies) {
      it(`bad input (${label}) → ${status} envelope, nothing changed`, async () => {
        const { owner, projectId } = await newProject();
        const before = await snapshotCounts(projectId);
        const r = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, body });
        expect(r.status).to.equal(status);
        expect(r.body.error).to.be.a('string');
        expect(await snapshotCounts(projectId)).to.deep.equal(before);
      });
    }

    it('malformed JSON → 400, oversize body → 413, wrong content type → 415; nothing changed', async () => {
      const { owner, projectId } = await newProject();
      const before = await snapshotCounts(projectId);
      const bad = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, raw: '{"name": ' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.match(/JSON/);
      const big = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, raw: JSON.stringify({ name: 'x', system_prompt: 'a'.repeat(2 * 1024 * 1024) }) });
      expect(big.status).to.equal(413);
      expect(big.body.error).to.match(/too large/);
      const text = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, raw: 'name=x', headers: { 'content-type': 'text/plain' } });
      expect(text.status).to.equal(415);
      const badQuery = await call('GET', `/api/v1/agent-types?project_id=not-a-uuid`, { token: owner.token });
      expect(badQuery.status).to.equal(400);
      // What Postgres cannot store, and prototype pollution, are refused before the database.
      for (const raw of ['{"name": "a\\u0000b"}', '{"name": "\\ud800"}', '{"name": "x", "__proto__": {"admin": true}}', '{"name": "x", "sandbox": {"memory_mb": 100000000000000000000}}']) {
        const r = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, raw });
        expect(r.status, raw).to.equal(400);
        expect(r.body.error).to.be.a('string');
      }
      expect((await call('GET', `/api/v1/projects/${projectId}/agents/a%00b`, { token: owner.token })).status).to.equal(400);
      expect((await call('GET', `/api/v1/projects/${projectId}/agents/x/conversations?offset=100000000000000000000`, { token: owner.token })).status).to.equal(400);
      // A known path with a method it does not have: 405 in the envelope, with Allow; an unknown method too.
      for (const method of ['PUT', 'PROPFIND']) {
        const { url } = await apiServer();
        const res = await fetch(`${url}/api/v1/projects/${projectId}/agents`, { method, headers: { authorization: `Bearer ${owner.token}` } });
        expect(res.status, method).to.equal(405);
        expect((await res.json()).error, method).to.contain('not allowed');
      }
      const put = await call('PUT', `/api/v1/projects/${projectId}/agents`, { token: owner.token, body: { name: 'x' } });
      expect(put.body.error).to.contain('allowed: ');
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
    });
  });

  describe('API keys', () => {
    it('is shown once, stored hashed, authenticates the agent, and stops working when revoked', async () => {
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token);
      const k = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/api-keys`, { token: owner.token, body: {} });
      expect(k.status).to.equal(201);
      expect(k.body.key).to.match(/^trp_/);
      const row = await db('agent_api_keys').where({ id: k.body.id }).first();
      expect(row.key_hash).to.not.contain(k.body.key);
      const list = await call('GET', `/api/v1/projects/${projectId}/agents/${a.id}/api-keys`, { token: owner.token });
      expect(JSON.stringify(list.body)).to.not.contain(k.body.key);
      const asAgent = await call('GET', `/api/v1/projects/${projectId}/agents`, { token: k.body.key });
      expect(asAgent.status).to.equal(200);
      const other = await newProject();
      expect((await call('GET', `/api/v1/projects/${other.projectId}/agents`, { token: k.body.key })).status).to.equal(404);
      const del = await call('DELETE', `/api/v1/projects/${projectId}/agents/${a.id}/api-keys/${k.body.id}`, { token: owner.token });
      expect(del.status).to.equal(200);
      expect((await call('GET', `/api/v1/projects/${projectId}/agents`, { token: k.body.key })).status).to.equal(401);
    });
  });

  describe('MCP servers and skills', () => {
    it('MCP env values are sealed and never returned', async () => {
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token);
      const r = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/mcp-servers`, {
        token: owner.token, body: { server_name: 'fetch', transport: 'stdio', command: 'uvx', args: ['mcp-server-fetch'], env: { TOKEN: 'mcp-SECRET-value' } },
      });
      expect(r.status).to.equal(201);
      expect(r.body.env_keys).to.deep.equal(['TOKEN']);
      expect(JSON.stringify(r.body)).to.not.contain('mcp-SECRET');
      const row = await db('agent_mcp_servers').where({ id: r.body.id }).first();
      expect(row.env_sealed).to.not.contain('mcp-SECRET');
      const got = await call('GET', `/api/v1/projects/${projectId}/agents/${a.id}`, { token: owner.token });
      expect(got.body.mcp_servers).to.have.length(1);
      expect(JSON.stringify(got.body)).to.not.contain('mcp-SECRET');
      const p = await call('PATCH', `/api/v1/projects/${projectId}/agents/${a.id}/mcp-servers/${r.body.id}`, { token: owner.token, body: { is_enabled: false } });
      expect(p.body.is_enabled).to.equal(false);
      const bad = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/mcp-servers`, { token: owner.token, body: { server_name: 'web', transport: 'http' } });
      expect(bad.status).to.equal(400);
      expect((await call('DELETE', `/api/v1/projects/${projectId}/agents/${a.id}/mcp-servers/${r.body.id}`, { token: owner.token })).status).to.equal(200);
      expect(await db('agent_mcp_servers').where({ id: r.body.id }).first()).to.equal(undefined);
    });

    it('inline skills parse front matter; github_url skills are fetched, and unreachable URLs are a clear 422', async () => {
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token);
      const content = '---\nname: code-review-guide\ndescription: Project code review guidelines.\ntriggers: [review]\n---\n# Code Review Guidelines\n';
      const r = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/skills`, { token: owner.token, body: { skill_name: 'code-review-guide', skill_source: 'inline', skill_content: content } });
      expect(r.status).to.equal(201);
      expect(r.body.description).to.equal('Project code review guidelines.');
      expect(r.body.triggers).to.deep.equal(['review']);

      const server = http.createServer((_req, res) => res.end('# Skill from the web\n'));
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const port = (server.address() as { port: number }).port;
      const fetched = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/skills`, {
        token: owner.token, body: { skill_name: 'web', skill_source: 'github_url', source_url: `http://127.0.0.1:${port}/SKILL.md`, triggers: ['git'] },
      });
      server.close();
      expect(fetched.status).to.equal(201);
      expect(fetched.body.skill_content).to.contain('Skill from the web');

      const before = await snapshotCounts(projectId);
      const down = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/skills`, {
        token: owner.token, body: { skill_name: 'gone', skill_source: 'github_url', source_url: `http://127.0.0.1:${port}/SKILL.md` },
      });
      expect(down.status).to.equal(422);
      expect(down.body.error).to.match(/Could not fetch the skill/);
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
    });
  });

  describe('agent types', () => {
    it('lists built-ins, and a project\'s own only with its project_id', async () => {
      const { owner, projectId } = await newProject();
      const c = await call('POST', `/api/v1/projects/${projectId}/agent-types`, { token: owner.token, body: { name: 'Data Wrangler', default_image: 'troupe-sandbox-minimal:latest' } });
      expect(c.status).to.equal(201);
      expect(c.body.slug).to.equal('data-wrangler');
      const plain = await call('GET', '/api/v1/agent-types', { token: owner.token });
      expect(plain.body.map((t: any) => t.slug)).to.include.members(['developer', 'reviewer', 'assistant']).and.not.include('data-wrangler');
      const withP = await call('GET', `/api/v1/agent-types?project_id=${projectId}`, { token: owner.token });
      expect(withP.body.map((t: any) => t.slug)).to.include('data-wrangler');
      const stranger = await newUser();
      expect((await call('GET', `/api/v1/agent-types?project_id=${projectId}`, { token: stranger.token })).status).to.equal(404);
    });
  });

  describe('OpenAPI', () => {
    it('documents every route with the schemas ajv enforces', async () => {
      const r = await call('GET', '/openapi.json');
      expect(r.body.openapi).to.equal('3.1.0');
      const { routes } = await import('../src/http/registry.js');
      for (const route of routes) {
        const p = route.path.replace(/:([A-Za-z_]+)/g, '{$1}');
        expect(r.body.paths[p], p).to.have.property(route.method);
        if (route.body) expect(r.body.paths[p][route.method].requestBody.content['application/json'].schema).to.deep.equal(route.body);
      }
    });
  });

  describe('migrations', () => {
    it('run up and down cleanly on a scratch database', async function () {
      this.timeout(60_000);
      const name = `troupe_mig_${uniq('x').replace(/-/g, '_')}`;
      await db.raw(`CREATE DATABASE ${name}`);
      const url = new URL(process.env.DATABASE_URL!);
      url.pathname = `/${name}`;
      const k = knexFactory({ client: 'pg', connection: url.toString(), migrations: { directory: './migrations', loadExtensions: ['.ts'] } });
      try {
        await k.migrate.latest();
        expect((await k('agent_types').whereNull('project_id')).length).to.be.greaterThan(2);
        await k.migrate.rollback(undefined, true);
        const left = await k.raw(`select count(*)::int as n from information_schema.tables where table_schema='public' and table_name not like 'knex_%'`);
        expect(left.rows[0].n).to.equal(0);
        await k.migrate.latest();
      } finally {
        await k.destroy();
        await db.raw(`DROP DATABASE ${name}`);
      }
    });
  });
});
