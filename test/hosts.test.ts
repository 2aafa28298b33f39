// Worker hosts (issue 13) on one machine: the in-process worker is this suite's one host. The
// admin view, drain's refusals, and a session that waits visibly for a host with room and starts
// once room frees. The multi-host behaviour (placement over engines, a lost host, drain moving
// files) is `npm run test:cluster`.
import { expect } from 'chai';
import { call, newAgent, newProject, newUser, sessionWorker, waitFor } from './support/harness.js';
import { signUserToken } from '../src/http/auth.js';
import { config } from '../src/config.js';
import { db } from '../src/db/knex.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { request } from './support/http.js';

const adminToken = () => signUserToken('test-admin');

describe('worker hosts', () => {
  before(() => sessionWorker());

  it('GET /api/v1/admin/hosts lists this host (admins only)', async () => {
    const r = await call('GET', '/api/v1/admin/hosts', { token: await adminToken() });
    expect(r.status).to.equal(200);
    const me = r.body.hosts.find((h: { id: string }) => h.id === config.hostId);
    expect(me).to.include({ state: 'live', capacity: config.hostMaxSandboxes, engine: config.hostEngine });
    expect(me.sandboxes).to.have.keys('active', 'paused');
    expect(me.heartbeat_age_seconds).to.be.lessThan(config.hostDeadSeconds);
    const user = await newUser();
    const denied = await call('GET', '/api/v1/admin/hosts', { token: user.token });
    expect(denied.status).to.equal(403);
    expect(denied.body.error).to.match(/admins/);
    expect((await call('POST', `/api/v1/admin/hosts/${config.hostId}/drain`, { token: user.token, body: {} })).status).to.equal(403);
    const unknown = await call('POST', '/api/v1/admin/hosts/no-such-host/drain', { token: await adminToken(), body: {} });
    expect(unknown.status).to.equal(404);
  });

  it('with no room on any host a session waits in queued, says so, and starts when room frees', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    await db('hosts').where({ id: config.hostId }).update({ capacity: 0 });
    let id: string;
    try {
      const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'hi' } });
      expect(r.status).to.equal(201);
      id = r.body.id;
      const waiting = await waitFor('the waiting notice', async () => (await db('session_events').where({ session_id: id }).whereRaw("payload->>'waiting_for_host' = 'true'").first()) ?? null);
      expect(waiting.event_type).to.equal('status');
      expect(waiting.payload).to.include({ status: 'queued' });
      expect((await db('sessions').where({ id }).first()).status).to.equal('queued');
      expect((await db('sandboxes as sb').join('sessions as s', 's.sandbox_id', 'sb.id').where('s.id', id).first('sb.host_id')).host_id).to.equal(null);
    } finally {
      await db('hosts').where({ id: config.hostId }).update({ capacity: config.hostMaxSandboxes });
    }
    await waitFor('the session to run once room frees', async () => ['idle', 'completed'].includes((await db('sessions').where({ id: id! }).first()).status), 30_000);
    const placed = await db('sandboxes as sb').join('sessions as s', 's.sandbox_id', 'sb.id').where('s.id', id!).first('sb.host_id');
    expect(placed.host_id).to.equal(config.hostId);
  });

  it('past TROUPE_HOST_MAX_WAITING, a session with work is refused: 503 with Retry-After, nothing created', async function () {
    this.timeout(90_000);
    const port = await freePort();
    let api: Proc | undefined;
    const before = await db('hosts').select('id', 'capacity');
    try {
      api = await startApi({ PORT: String(port), HOST: '127.0.0.1', TROUPE_HOST_MAX_WAITING: '0', TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX! });
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      await db('hosts').update({ capacity: 0 });
      const r = await request(`http://127.0.0.1:${port}`, 'POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'hi' } });
      expect(r.status).to.equal(503);
      expect(r.headers.get('retry-after')).to.equal('30');
      expect(r.body.error).to.match(/Every worker host is full/);
      expect(Number((await db('sessions').where({ project_id: projectId }).count<{ n: string }[]>('* as n'))[0].n)).to.equal(0);
    } finally {
      for (const h of before) await db('hosts').where({ id: h.id }).update({ capacity: h.capacity });
      await api?.stop();
    }
  });
});
