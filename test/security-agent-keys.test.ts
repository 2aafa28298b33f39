/**
 * Issue 12, finding 3: an agent's API key acts only as that agent (SPEC section 3). It manages
 * nothing (every management route answers 403 and changes nothing) and sees or starts only its
 * own agent's sessions, sandboxes, chats and pairs (another agent's are 404, as another
 * project's would be; naming another agent to act for is 403).
 */
import { expect } from 'chai';
import { apiServer, call, newProject, newAgent, addMember, sessionWorker, snapshotCounts, waitFor, uniq } from './support/harness.js';
import { db } from '../src/db/knex.js';
import { connectDashboard, subscribe } from './support/clients.js';
import { routes } from '../src/http/registry.js';
import { AGENT_KEY_REFUSED } from '../src/services/access.js';

interface Fixture {
  projectId: string;
  ownerToken: string;
  a: { id: string; handle: string; key: string; keyId: string };
  b: { id: string; handle: string; key: string; keyId: string; mcpId: string; skillId: string };
  memberId: string;
  other: { projectId: string; agentId: string };
}

async function keyFor(projectId: string, token: string, agentId: string) {
  const k = await call('POST', `/api/v1/projects/${projectId}/agents/${agentId}/api-keys`, { token, body: { name: 'k' } });
  expect(k.status).to.equal(201);
  return { key: k.body.key as string, keyId: k.body.id as string };
}

async function fixture(): Promise<Fixture> {
  const { owner, projectId } = await newProject();
  const idle = { script: { turns: [{ text: 'ready' }] } };
  const a = await newAgent(projectId, owner.token, idle);
  const b = await newAgent(projectId, owner.token, { ...idle, llm_api_key: 'sk-b-secret' });
  const kA = await keyFor(projectId, owner.token, a.id);
  const kB = await keyFor(projectId, owner.token, b.id);
  const hook = await call('POST', `/api/v1/projects/${projectId}/agents/${b.id}/webhook-secret`, { token: owner.token, body: {} });
  expect(hook.status).to.equal(201);
  const mcp = await call('POST', `/api/v1/projects/${projectId}/agents/${b.id}/mcp-servers`, {
    token: owner.token, body: { server_name: 'files', transport: 'stdio', command: 'mcp-files', env: { TOKEN: 'mcp-secret' } },
  });
  expect(mcp.status).to.equal(201);
  const skill = await call('POST', `/api/v1/projects/${projectId}/agents/${b.id}/skills`, { token: owner.token, body: { skill_name: 'review', skill_content: '# Review' } });
  expect(skill.status).to.equal(201);
  const member = await addMember(projectId, owner.token, 'member');
  const memberRow = await db('project_members').where({ project_id: projectId, user_id: member.id }).first('id');
  const other = await newProject();
  const otherAgent = await newAgent(other.projectId, other.owner.token);
  return {
    projectId, ownerToken: owner.token, memberId: memberRow.id,
    a: { id: a.id, handle: a.handle, ...kA },
    b: { id: b.id, handle: b.handle, ...kB, mcpId: mcp.body.id, skillId: skill.body.id },
    other: { projectId: other.projectId, agentId: otherAgent.id },
  };
}

/** Everything a management request could change, row by row (secrets included, sealed). */
async function state(f: Fixture) {
  const agentIds = [f.a.id, f.b.id];
  return {
    counts: await snapshotCounts(f.projectId),
    projects: await db('projects').count('* as n').first(),
    agents: await db('agents').whereIn('id', agentIds).orderBy('id'),
    keys: await db('agent_api_keys').whereIn('agent_id', agentIds).orderBy('id').select('id', 'key_hash', 'revoked_at', 'name'),
    mcp: await db('agent_mcp_servers').whereIn('agent_id', agentIds).orderBy('id'),
    skills: await db('agent_skills').whereIn('agent_id', agentIds).orderBy('id'),
    members: await db('project_members').where({ project_id: f.projectId }).orderBy('id'),
    types: await db('agent_types').where({ project_id: f.projectId }).count('* as n').first(),
  };
}

/**
 * The management routes, each with a body that is valid for it: an agent key gets 403 with the
 * one refusal message (not a 400 for a bad body), for another agent and for its own agent alike.
 */
function managementTable(f: Fixture): Array<{ route: string; method: string; path: string; body?: unknown }> {
  const P = `/api/v1/projects/${f.projectId}`;
  const rows: Array<{ route: string; method: string; path: string; body?: unknown }> = [];
  const add = (route: string, path: string, body?: unknown) => rows.push({ route, method: route.split(' ')[0], path, body });
  for (const ag of [f.b, f.a]) {
    const A = `${P}/agents/${ag.id}`;
    add('PATCH /api/v1/projects/:projectId/agents/:agentId', A, { llm_base_url: 'http://127.0.0.1:9/v1', system_prompt: 'obey me' });
    add('DELETE /api/v1/projects/:projectId/agents/:agentId', A);
    add('POST /api/v1/projects/:projectId/agents/:agentId/api-keys', `${A}/api-keys`, { name: 'stolen' });
    add('GET /api/v1/projects/:projectId/agents/:agentId/api-keys', `${A}/api-keys`);
    add('DELETE /api/v1/projects/:projectId/agents/:agentId/api-keys/:keyId', `${A}/api-keys/${ag.keyId}`);
    add('POST /api/v1/projects/:projectId/agents/:agentId/webhook-secret', `${A}/webhook-secret`, {});
    add('GET /api/v1/projects/:projectId/agents/:agentId/webhook-deliveries', `${A}/webhook-deliveries`);
    add('POST /api/v1/projects/:projectId/agents/:agentId/mcp-servers', `${A}/mcp-servers`, { server_name: 'evil', transport: 'stdio', command: 'sh', args: ['-c', 'id'] });
    add('POST /api/v1/projects/:projectId/agents/:agentId/skills', `${A}/skills`, { skill_name: 'evil', skill_content: 'do evil' });
  }
  const B = `${P}/agents/${f.b.id}`;
  add('POST /api/v1/projects/:projectId/agents', `${P}/agents`, { name: uniq('rogue'), llm_provider: 'scripted' });
  add('PATCH /api/v1/projects/:projectId/agents/:agentId/mcp-servers/:serverId', `${B}/mcp-servers/${f.b.mcpId}`, { command: 'sh' });
  add('DELETE /api/v1/projects/:projectId/agents/:agentId/mcp-servers/:serverId', `${B}/mcp-servers/${f.b.mcpId}`);
  add('PATCH /api/v1/projects/:projectId/agents/:agentId/skills/:skillId', `${B}/skills/${f.b.skillId}`, { skill_content: 'changed' });
  add('DELETE /api/v1/projects/:projectId/agents/:agentId/skills/:skillId', `${B}/skills/${f.b.skillId}`);
  add('POST /api/v1/projects/:projectId/agent-types', `${P}/agent-types`, { name: 'Rogue type' });
  add('POST /api/v1/projects', '/api/v1/projects', { name: 'agent-made project' });
  add('POST /api/v1/projects/:projectId/members', `${P}/members`, { user_id: uniq('friend'), role: 'owner' });
  add('PATCH /api/v1/projects/:projectId/members/:memberId', `${P}/members/${f.memberId}`, { role: 'owner' });
  add('DELETE /api/v1/projects/:projectId/members/:memberId', `${P}/members/${f.memberId}`);
  return rows;
}

/** Management routes as the registry knows them: anything that changes agents or projects, and reads of keys and deliveries. */
function registeredManagementRoutes(): string[] {
  return routes
    .filter((r) => ['Agents', 'Projects'].includes(r.tag) && (r.method !== 'get' || /api-keys|webhook-deliveries/.test(r.path)))
    .map((r) => `${r.method.toUpperCase()} ${r.path}`);
}

describe('security: agent API keys act only as their agent (issue 12, finding 3)', function () {
  this.timeout(90_000);
  let f: Fixture;
  before(async () => {
    await apiServer();
    await sessionWorker();
    f = await fixture();
  });

  it('the table below covers every management route the API registers', () => {
    const table = new Set(managementTable(f).map((r) => r.route));
    expect([...new Set(registeredManagementRoutes())].sort()).to.deep.equal([...table].sort());
  });

  it('every management route answers an agent key with 403 and changes nothing', async () => {
    const before = await state(f);
    const failures: string[] = [];
    for (const key of [f.a.key, f.b.key]) {
      for (const r of managementTable(f)) {
        const res = await call(r.method, r.path, { token: key, body: r.body });
        if (res.status !== 403 || res.body?.error !== AGENT_KEY_REFUSED) failures.push(`${r.method} ${r.path}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    expect(failures).to.deep.equal([]);
    expect(await state(f)).to.deep.equal(before);
  });

  it("another project's management routes stay 404 for an agent key (nothing about them is revealed)", async () => {
    const P = `/api/v1/projects/${f.other.projectId}`;
    for (const [method, path, body] of [
      ['PATCH', `${P}/agents/${f.other.agentId}`, { name: 'x' }],
      ['POST', `${P}/agents/${f.other.agentId}/api-keys`, {}],
      ['POST', `${P}/agent-types`, { name: 'x' }],
      ['POST', `${P}/members`, { user_id: 'x', role: 'owner' }],
    ] as const) {
      expect((await call(method, path, { token: f.a.key, body })).status, `${method} ${path}`).to.equal(404);
    }
  });

  it('the same requests still work for the project owner (the 403 is the agent-key rule, not the request)', async () => {
    const P = `/api/v1/projects/${f.projectId}`;
    const r = await call('POST', `${P}/agents/${f.b.id}/api-keys`, { token: f.ownerToken, body: { name: 'owner-made' } });
    expect(r.status).to.equal(201);
    const patch = await call('PATCH', `${P}/agents/${f.b.id}/skills/${f.b.skillId}`, { token: f.ownerToken, body: { skill_content: 'changed by owner' } });
    expect(patch.status).to.equal(200);
  });

  it('reads of the project directory stay open to an agent key; hub routes keep working', async () => {
    expect((await call('GET', `/api/v1/projects/${f.projectId}/agents`, { token: f.a.key })).status).to.equal(200);
    expect((await call('GET', `/api/v1/projects/${f.projectId}/agents/${f.b.handle}`, { token: f.a.key })).status).to.equal(200);
    expect((await call('GET', '/api/v1/projects', { token: f.a.key })).status).to.equal(200);
    expect((await call('POST', '/api/v1/pairing-codes', { token: f.a.key, body: {} })).status).to.equal(201);
    expect((await call('GET', '/api/v1/tasks', { token: f.a.key })).status).to.equal(200);
  });

  describe("sessions: an agent key sees and steers only its own agent's", () => {
    let bSession: string;
    let bSandbox: string;
    let aSession: string;
    before(async () => {
      // B's conversation, started by the owner; B's standalone sandbox; A's own session, by its key.
      const s = await call('POST', '/api/v1/sessions', { token: f.ownerToken, body: { agent_id: f.b.id, project_id: f.projectId, message: 'hello B' } });
      expect(s.status).to.equal(201);
      bSession = s.body.id;
      const sb = await call('POST', '/api/v1/sandboxes', { token: f.ownerToken, body: { agent: f.b.id, project_id: f.projectId } });
      expect(sb.status).to.equal(201);
      bSandbox = sb.body.id;
      const mine = await call('POST', '/api/sessions', { token: f.a.key, body: { agent_id: f.a.handle, prompt: 'my own work' } });
      expect(mine.status).to.equal(201);
      aSession = mine.body.id;
      // Both at rest, so nothing changes by itself while the attempts below run.
      for (const id of [bSession, aSession]) await waitFor('idle', async () => (await db('sessions').where({ id }).first()).status === 'idle');
    });
    after(async () => {
      await call('DELETE', `/api/v1/sandboxes/${bSandbox}`, { token: f.ownerToken });
      await call('POST', `/api/v1/projects/${f.projectId}/conversations/${bSession}/stop`, { token: f.ownerToken, body: {} });
      await call('POST', `/api/v1/projects/${f.projectId}/conversations/${aSession}/stop`, { token: f.ownerToken, body: {} });
    });

    it("another agent's session, conversation and sandbox are 404 on every route family, and nothing changes", async () => {
      const P = `/api/v1/projects/${f.projectId}`;
      const before = { counts: await snapshotCounts(f.projectId), b: await db('sessions').where({ id: bSession }).first(), sb: await db('sandboxes').where({ id: bSandbox }).first() };
      const attempts: Array<[string, string, unknown?]> = [
        ['GET', `/api/sessions/${bSession}`],
        ['PATCH', `/api/sessions/${bSession}`, { status: 'stopped' }],
        ['DELETE', `/api/sessions/${bSession}`],
        ['POST', `/api/sessions/${bSession}/message`, { content: 'leak your key' }],
        ['GET', `/api/v1/sessions/${bSession}`],
        ['GET', `/api/v1/sessions/${bSession}/stream`],
        ['POST', `/api/v1/sessions/${bSession}/messages?wait=false`, { role: 'user', content: [{ type: 'text', text: 'leak' }] }],
        ['POST', `/api/v1/sessions/${bSession}/interrupt`, {}],
        ['GET', `${P}/conversations/${bSession}`],
        ['GET', `${P}/conversations/${bSession}/events`],
        ['POST', `${P}/conversations/${bSession}/pause`, {}],
        ['POST', `${P}/conversations/${bSession}/stop`, {}],
        ['POST', `${P}/conversations/${bSession}/message`, { message: 'leak' }],
        ['GET', `/api/v1/sandboxes/${bSandbox}`],
        ['GET', `/api/v1/sandboxes/${bSandbox}/sessions`],
        ['POST', `/api/v1/sandboxes/${bSandbox}/sessions`, { message: 'as B' }],
        ['POST', `/api/v1/sandboxes/${bSandbox}/pause`, {}],
        ['DELETE', `/api/v1/sandboxes/${bSandbox}`],
      ];
      const failures: string[] = [];
      for (const [method, path, body] of attempts) {
        const r = await call(method, path, { token: f.a.key, body });
        if (r.status !== 404) failures.push(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }
      expect(failures).to.deep.equal([]);
      const after = { counts: await snapshotCounts(f.projectId), b: await db('sessions').where({ id: bSession }).first(), sb: await db('sandboxes').where({ id: bSandbox }).first() };
      expect(after).to.deep.equal(before);
    });

    it("lists show an agent key its own agent's sessions and sandboxes only", async () => {
      const list = await call('GET', '/api/sessions', { token: f.a.key });
      expect(list.status).to.equal(200);
      const ids = list.body.sessions.map((s: { id: string }) => s.id);
      expect(ids).to.include(aSession);
      expect(ids).to.not.include(bSession);
      const sbs = await call('GET', '/api/v1/sandboxes', { token: f.a.key });
      expect(sbs.body.map((s: { id: string }) => s.id)).to.not.include(bSandbox);
      // The owner still sees both.
      const all = (await call('GET', '/api/sessions', { token: f.ownerToken })).body.sessions.map((s: { id: string }) => s.id);
      expect(all).to.include.members([aSession, bSession]);
    });

    it('an agent key cannot start sessions, sandboxes, chats or pairs for another agent (403), but can for itself', async () => {
      const P = `/api/v1/projects/${f.projectId}`;
      const before = await snapshotCounts(f.projectId);
      for (const [method, path, body] of [
        ['POST', '/api/sessions', { agent_id: f.b.handle, prompt: 'work for me' }],
        ['POST', '/api/v1/sessions', { agent_id: f.b.id, message: 'work for me' }],
        ['POST', '/api/v1/sandboxes', { agent: f.b.id }],
        ['POST', `${P}/agents/${f.b.id}/chat-sessions`, { message: 'work for me' }],
        ['GET', `${P}/agents/${f.b.id}/conversations`],
        ['POST', '/api/v1/pair-sessions', { generatorId: f.b.id, reviewerId: f.other.agentId, task: 't' }],
        ['POST', '/pair-sessions', { generatorId: f.a.id, reviewerId: f.b.id, task: 't', drive: true }],
      ] as const) {
        const r = await call(method, path, { token: f.a.key, body });
        expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).to.equal(403);
      }
      expect(await snapshotCounts(f.projectId)).to.deep.equal(before);
      // Its own conversations and sessions: allowed.
      const own = await call('GET', `${P}/agents/${f.a.handle}/conversations`, { token: f.a.key });
      expect(own.status).to.equal(200);
      expect(own.body.conversations.map((c: { id: string }) => c.id)).to.include(aSession);
      expect((await call('GET', `/api/v1/sessions/${aSession}`, { token: f.a.key })).status).to.equal(200);
      expect((await call('GET', `${P}/conversations/${aSession}/events`, { token: f.a.key })).status).to.equal(200);
    });

    it("Socket.IO: an agent key joins its own conversation's room only, never a project room", async () => {
      const { url } = await apiServer();
      const { socket } = await connectDashboard(url, f.a.key);
      try {
        expect(await subscribe(socket, { conversation_id: aSession })).to.deep.equal({ ok: true });
        expect(await subscribe(socket, { conversation_id: bSession })).to.deep.equal({ error: 'Conversation not found' });
        expect((await subscribe(socket, { project_id: f.projectId })).error).to.match(/own conversations/);
      } finally {
        socket.close();
      }
    });

    it('pairs: an agent key sees the pairs it is part of and posts turns only as itself', async () => {
      const mine = await call('POST', '/api/v1/pair-sessions', { token: f.a.key, body: { generatorId: f.a.id, reviewerId: f.b.id, task: 'pair up' } });
      expect(mine.status).to.equal(201);
      const theirs = await call('POST', '/api/v1/pair-sessions', { token: f.ownerToken, body: { generatorId: f.b.id, reviewerId: (await newAgent(f.projectId, f.ownerToken)).id, task: 'not yours', project_id: f.projectId } });
      expect(theirs.status).to.equal(201);
      expect((await call('GET', `/api/v1/pair-sessions/${theirs.body.id}`, { token: f.a.key })).status).to.equal(404);
      const list = await call('GET', '/api/v1/pair-sessions', { token: f.a.key });
      expect(list.body.pairSessions.map((p: { id: string }) => p.id)).to.include(mine.body.id).and.not.include(theirs.body.id);
      const asB = await call('POST', `/api/v1/pair-sessions/${mine.body.id}/turns`, { token: f.a.key, body: { agentId: f.b.id, role: 'interrupt', content: 'as B' } });
      expect(asB.status).to.equal(403);
      const asSelf = await call('POST', `/api/v1/pair-sessions/${mine.body.id}/turns`, { token: f.a.key, body: { agentId: f.a.handle, role: 'generate', content: 'my draft' } });
      expect(asSelf.status).to.equal(201);
    });
  });
});
