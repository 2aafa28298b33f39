import { expect } from 'chai';
import { apiServer, call, newAgent, newProject, newUser, sessionWorker, waitFor } from './support/harness.js';
import { signUserToken } from '../src/http/auth.js';
import { config } from '../src/config.js';

// test/support/env.ts makes `test-admin` the one admin (TROUPE_ADMIN_USERS).
const adminToken = () => signUserToken('test-admin');

describe('Bull Board at /admin/queues', () => {
  it('shows an admin the session and webhook queues', async () => {
    const r = await call('GET', '/admin/queues/api/queues', { token: await adminToken() });
    expect(r.status).to.equal(200);
    const names = (r.body.queues as Array<{ name: string }>).map((q) => q.name);
    // One session queue per worker host (issue 13): this process's host's is shown.
    expect(names).to.include.members([`sessions.${config.hostId}`, 'webhooks']);
  });

  it('answers 401 without a token and 403 to a non-admin user or an agent key, in the error envelope', async () => {
    const none = await call('GET', '/admin/queues/api/queues');
    expect(none.status).to.equal(401);
    expect(none.body).to.have.property('error').that.is.a('string');

    const user = await newUser();
    const other = await call('GET', '/admin/queues/api/queues', { token: user.token });
    expect(other.status).to.equal(403);
    expect(other.body.error).to.match(/admins/);

    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const key = await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/api-keys`, { token: owner.token, body: {} });
    expect(key.status).to.equal(201);
    const asAgent = await call('GET', '/admin/queues/api/queues', { token: key.body.key });
    expect(asAgent.status).to.equal(403);

    const page = await call('GET', '/admin/queues', { token: user.token });
    expect(page.status).to.equal(403);
  });

  it('takes ?access_token= once from a browser: an HttpOnly cookie scoped to /admin/queues, then a redirect without the token', async () => {
    const { url } = await apiServer();
    const token = await adminToken();
    const first = await fetch(`${url}/admin/queues?access_token=${encodeURIComponent(token)}`, { redirect: 'manual' });
    expect(first.status).to.equal(303);
    expect(first.headers.get('location')).to.equal('/admin/queues');
    const cookie = first.headers.get('set-cookie') ?? '';
    expect(cookie).to.match(/^troupe_admin_token=/);
    expect(cookie.toLowerCase()).to.include('httponly').and.include('path=/admin/queues').and.include('samesite=strict');

    const jar = cookie.split(';')[0];
    const page = await fetch(`${url}/admin/queues`, { headers: { cookie: jar } });
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/text\/html/);
    const html = await page.text();
    expect(html).to.match(/<html/i);
    // The page's own assets load from under the base path with the same cookie.
    const css = /href="(static\/[^"]+\.css)"/.exec(html)?.[1];
    expect(css, 'stylesheet link').to.be.a('string');
    expect((await fetch(`${url}/admin/queues/${css}`, { headers: { cookie: jar } })).status).to.equal(200);
    const api = await fetch(`${url}/admin/queues/api/queues`, { headers: { cookie: jar } });
    expect(api.status).to.equal(200);

    // A non-admin's token in the query sets nothing.
    const stranger = await fetch(`${url}/admin/queues?access_token=${(await newUser()).token}`, { redirect: 'manual' });
    expect(stranger.status).to.equal(403);
    expect(stranger.headers.get('set-cookie')).to.equal(null);
  });
});

describe('004 events route: seed 004 pagination names', function () {
  this.timeout(60_000);
  before(async () => {
    await sessionWorker();
  });

  it('accepts event_limit / event_offset as limit / offset', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'one', tool_calls: [{ name: 'bash', input: { command: 'echo hi' } }] }, { text: 'two' }] },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'go' } });
    expect(s.status).to.equal(201);
    const base = `/api/v1/projects/${projectId}/conversations/${s.body.id}/events`;
    const all = await waitFor('the turn to end', async () => {
      const r = await call('GET', base, { token: owner.token });
      return r.body.events?.some((e: { event_type: string; payload: { status?: string } }) => e.event_type === 'status' && e.payload.status === 'idle') ? r.body : null;
    });
    expect(all.total).to.be.greaterThan(4);

    const seed = await call('GET', `${base}?event_limit=2&event_offset=1`, { token: owner.token });
    const ours = await call('GET', `${base}?limit=2&offset=1`, { token: owner.token });
    expect(seed.status).to.equal(200);
    expect(seed.body).to.deep.equal(ours.body);
    expect(seed.body.events.map((e: { event_index: number }) => e.event_index)).to.deep.equal([1, 2]);
    expect(seed.body.has_more).to.equal(true);

    // The seed's names win when both are given.
    const both = await call('GET', `${base}?limit=50&event_limit=1&offset=0&event_offset=3`, { token: owner.token });
    expect(both.body.events.map((e: { event_index: number }) => e.event_index)).to.deep.equal([3]);

    const last = await call('GET', `${base}?event_offset=${all.total - 1}`, { token: owner.token });
    expect(last.body.events).to.have.length(1);
    expect(last.body.has_more).to.equal(false);

    for (const bad of ['event_limit=0', 'event_limit=1001', 'event_offset=-1', 'event_limit=x']) {
      const r = await call('GET', `${base}?${bad}`, { token: owner.token });
      expect(r.status, bad).to.equal(400);
      expect(r.body.error, bad).to.match(/event_(limit|offset)/);
    }
  });
});
