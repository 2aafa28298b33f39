/**
 * Issue 12, findings 7 and 8: deployment-wide ceilings, per-project quotas, a sandbox's `timeout`,
 * the container user, the image allow-list and bridge networking, each tried as the attack and
 * judged by the HTTP answer, the rows, and what Docker reports.
 *
 * Most tests run on the suite's in-process api and worker with the defaults (ceilings derived from
 * this host, Troupe's own images, bridge off). The quota and bridge tests need other settings, so
 * they start their own api and worker processes (own Redis prefix, this suite's instance label)
 * with TROUPE_PROJECT_MAX_* and TROUPE_ALLOW_BRIDGE_NETWORK set.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import Docker from 'dockerode';
import { config } from '../src/config.js';
import { db } from '../src/db/knex.js';
import { log } from '../src/log.js';
import { ceilingViolations, containerUser, imageAllowed, isRootUser, parseAllowedImages } from '../src/lib/sandbox-policy.js';
import { call, newAgent, newProject, sessionWorker, snapshotCounts, waitFor } from './support/harness.js';
import { freePort, startApi, startWorker, type Proc } from './support/processes.js';
import { signUserToken } from '../src/http/auth.js';

const docker = new Docker();
const MINIMAL = 'troupe-sandbox-minimal:latest';

async function inspect(id: string) {
  try {
    return await docker.getContainer(id).inspect();
  } catch {
    return null;
  }
}

async function sandboxDriver() {
  return (await import('../src/runtime/sandbox/index.js')).sandboxDriver();
}

/** A driver of this instance without a warm pool, so a test's odd shapes are not kept warm. */
async function plainDriver() {
  const { DockerSandboxDriver } = await import('../src/runtime/sandbox/docker-driver.js');
  return new DockerSandboxDriver({ instance: config.instance });
}

describe('security: sandbox ceilings, quotas, timeout, user, images, network (issue 12, findings 7 and 8)', function () {
  this.timeout(120_000);

  describe('rules', () => {
    it('images: repositories match any tag, pinned entries one tag, prefixes with *; the default image is always allowed', () => {
      const list = parseAllowedImages(undefined, 'my-default:2', []);
      expect(list).to.deep.equal(['troupe-sandbox-default', 'troupe-sandbox-minimal', 'my-default:2']);
      expect(imageAllowed('troupe-sandbox-minimal:latest', list)).to.equal(true);
      expect(imageAllowed('troupe-sandbox-minimal', list)).to.equal(true);
      expect(imageAllowed('troupe-sandbox-minimal-evil:latest', list)).to.equal(false);
      expect(imageAllowed('my-default:2', list)).to.equal(true);
      expect(imageAllowed('my-default:3', list)).to.equal(false);
      expect(imageAllowed('alpine', list)).to.equal(false);
      expect(imageAllowed('troupe-sandbox-x:1', ['troupe-sandbox-*'])).to.equal(true);
      expect(imageAllowed('registry:5000/team/img', ['registry:5000/team/img'])).to.equal(true);
      expect(imageAllowed('registry:5000/team/img:v1', ['registry:5000/team/img:latest'])).to.equal(false);
      const problems: string[] = [];
      parseAllowedImages('ok, bad name', 'x', problems);
      expect(problems[0]).to.match(/TROUPE_ALLOWED_IMAGES entry "bad name"/);
    });

    it('users: root in any spelling is root; only numeric non-root image users are kept', () => {
      for (const u of ['', 'root', '0', '0:0', '000', '1000:0', '1000:root', 'root:1000']) expect(isRootUser(u), u).to.equal(true);
      for (const u of ['1000', '1000:1000', 'agent']) expect(isRootUser(u), u).to.equal(false);
      expect(containerUser('1001:1002')).to.equal('1001:1002');
      expect(containerUser('')).to.equal('1000:1000');
      expect(containerUser('root')).to.equal('1000:1000');
      expect(containerUser('0')).to.equal('1000:1000');
      expect(containerUser('agent')).to.equal('1000:1000'); // a name may be uid 0 in the image
    });

    it('ceilings default to this host and are named in what is refused', () => {
      expect(config.sandboxMaxCpus).to.be.at.least(1);
      expect(config.sandboxMaxPids).to.equal(4096);
      expect(ceilingViolations({ memory_mb: 65536, pids: 100_000 }, { memoryMb: 1024, cpus: 2, pids: 4096 })).to.have.length(2);
    });
  });

  describe('on the suite api (defaults)', () => {
    before(() => sessionWorker());

    it('finding 7: 64 GiB and 100,000 pids are refused (400 naming the ceiling), for a sandbox and for an agent; nothing changes', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const before = await snapshotCounts(projectId);
      const r = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, limits: { memory_mb: 65536, pids: 100_000 } } });
      expect(r.status).to.equal(400);
      expect(r.body.error).to.contain(`ceiling of ${config.sandboxMaxMemoryMb} (TROUPE_SANDBOX_MAX_MEMORY_MB)`);
      expect(r.body.error).to.contain(`ceiling of ${config.sandboxMaxPids} (TROUPE_SANDBOX_MAX_PIDS)`);
      const cpus = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, limits: { cpus: config.sandboxMaxCpus + 1 } } });
      expect(cpus.status).to.equal(400);
      expect(cpus.body.error).to.contain('TROUPE_SANDBOX_MAX_CPUS');

      const created = await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, body: { name: 'greedy', llm_provider: 'scripted', sandbox: { memory_mb: 65536 } } });
      expect(created.status).to.equal(400);
      expect(created.body.error).to.contain('TROUPE_SANDBOX_MAX_MEMORY_MB');
      const patched = await call('PATCH', `/api/v1/projects/${projectId}/agents/${agent.id}`, { token: owner.token, body: { sandbox: { image: MINIMAL, pids: 100_000 } } });
      expect(patched.status).to.equal(400);
      expect(patched.body.error).to.contain('TROUPE_SANDBOX_MAX_PIDS');
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
      expect((await db('agents').where({ id: agent.id }).first()).sandbox).to.deep.equal({ image: MINIMAL });
    });

    it('finding 7 (defence in depth): the worker clamps a row above the ceilings; Docker reports the ceiling', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      // A row written before the ceilings existed (or by anything but the api).
      const [row] = await db('sandboxes').insert({
        project_id: projectId, agent_id: agent.id, image: MINIMAL, env_keys: '[]', metadata: '{}',
        limits: JSON.stringify({ memory_mb: 65536, pids: 100_000, cpus: 64, network: 'bridge' }),
      }).returning('*');
      const { ensureContainer } = await import('../src/runtime/sandbox/containers.js');
      const driver = await plainDriver();
      const cid = await ensureContainer(driver, row);
      try {
        const c = (await inspect(cid))!;
        expect(c.HostConfig.Memory).to.equal(config.sandboxMaxMemoryMb * 1024 * 1024);
        expect(c.HostConfig.PidsLimit).to.equal(config.sandboxMaxPids);
        expect(c.HostConfig.NanoCpus).to.equal(Math.round(config.sandboxMaxCpus * 1e9));
        expect(c.HostConfig.NetworkMode).to.equal('none'); // bridge is off on this deployment
      } finally {
        await driver.remove(cid);
        await db('sandboxes').where({ id: row.id }).update({ state: 'stopped' });
      }
    });

    it('finding 8: a session runs as 1000:1000 (docker inspect Config.User, id -u inside)', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'who am i', tool_calls: [{ name: 'bash', input: { command: 'id -u; id -g' } }] }, { text: 'done' }] } });
      const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'go' } });
      expect(s.status).to.equal(201);
      await waitFor('the turn to end', async () => (await db('sessions').where({ id: s.body.id }).first()).status === 'idle');
      const sb = await db('sandboxes').where({ id: s.body.sandbox_id }).first();
      expect((await inspect(sb.container_id))!.Config.User).to.equal('1000:1000');
      const r = await call('GET', `/api/v1/sessions/${s.body.id}`, { token: owner.token });
      const result = r.body.messages.flatMap((m: any) => m.content).find((b: any) => b.type === 'tool_result');
      expect(JSON.stringify(result.content)).to.match(/1000\\n1000/);
      await call('POST', `/api/v1/projects/${projectId}/conversations/${s.body.id}/stop`, { token: owner.token, body: {} });
    });

    it('finding 8: an image whose user is root still runs as 1000:1000; asking for root is refused (driver and api)', async () => {
      const driver = await plainDriver();
      const tag = `troupe-test-rootuser:${config.instance}`;
      const base = await docker.createContainer({ Image: MINIMAL, Labels: { 'troupe.instance': config.instance } });
      await base.commit({ repo: tag.split(':')[0], tag: tag.split(':')[1], changes: 'USER root' });
      await base.remove({ force: true });
      let cid: string | undefined;
      try {
        expect((await docker.getImage(tag).inspect()).Config.User).to.equal('root');
        cid = (await driver.ensure({ sandboxId: crypto.randomUUID(), projectId: 'p', image: tag })).id;
        expect((await inspect(cid))!.Config.User).to.equal('1000:1000');
        const id = await driver.exec(cid, { command: 'id -u', workdir: '/' });
        expect(id.stdout.trim()).to.equal('1000');
        for (const user of ['root', '0', '0:0', '1000:0']) {
          let err: Error | undefined;
          await driver.ensure({ sandboxId: crypto.randomUUID(), projectId: 'p', image: tag, user }).catch((e) => (err = e));
          expect(err?.message, user).to.match(/never run as root/);
        }
      } finally {
        if (cid) await driver.remove(cid);
        await docker.getImage(tag).remove({ force: true }).catch(() => {});
      }
      // The api has no way to ask for a user at all: an attempt is bad input, and nothing changes.
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const before = await snapshotCounts(projectId);
      for (const body of [{ user: 'root' }, { limits: { user: '0' } }]) {
        const r = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, ...body } });
        expect(r.status).to.equal(400);
        expect(r.body.error).to.be.a('string');
      }
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
    });

    it('finding 8: images outside TROUPE_ALLOWED_IMAGES are refused (400 naming the allowed ones) for sandboxes, agents and agent types', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const before = await snapshotCounts(projectId);
      const named = (r: { status: number; body: any }) => {
        expect(r.status).to.equal(400);
        expect(r.body.error).to.contain('is not allowed on this deployment');
        expect(r.body.error).to.contain('troupe-sandbox-default, troupe-sandbox-minimal');
      };
      named(await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, image: 'alpine:latest' } }));
      named(await call('POST', `/api/v1/projects/${projectId}/agents`, { token: owner.token, body: { name: 'x', llm_provider: 'scripted', sandbox: { image: 'docker:dind' } } }));
      named(await call('PATCH', `/api/v1/projects/${projectId}/agents/${agent.id}`, { token: owner.token, body: { sandbox: { image: 'troupe-sandbox-minimal-evil' } } }));
      named(await call('POST', `/api/v1/projects/${projectId}/agent-types`, { token: owner.token, body: { name: 'Evil', default_image: 'ubuntu' } }));
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
      // Allowed images still work (any tag of an allowed repository).
      const ok = await call('POST', `/api/v1/projects/${projectId}/agent-types`, { token: owner.token, body: { name: 'Fine', default_image: 'troupe-sandbox-default:latest' } });
      expect(ok.status).to.equal(201);

      // The worker refuses too: a row naming another image never becomes a container.
      const [row] = await db('sandboxes').insert({ project_id: projectId, agent_id: agent.id, image: 'alpine:latest', env_keys: '[]', metadata: '{}', limits: '{}' }).returning('*');
      const { ensureContainer } = await import('../src/runtime/sandbox/containers.js');
      let err: Error | undefined;
      await ensureContainer(await sandboxDriver(), row).catch((e) => (err = e));
      expect(err?.message).to.match(/not allowed on this deployment/);
      expect(await (await sandboxDriver()).find(row.id)).to.equal(null);
      await db('sandboxes').where({ id: row.id }).update({ state: 'stopped' });
    });

    it('finding 8: network "bridge" is refused (400) where the deployment does not permit it, even for the owner', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const before = await snapshotCounts(projectId);
      const r = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, limits: { network: 'bridge' } } });
      expect(r.status).to.equal(400);
      expect(r.body.error).to.contain('TROUPE_ALLOW_BRIDGE_NETWORK');
      const a = await call('PATCH', `/api/v1/projects/${projectId}/agents/${agent.id}`, { token: owner.token, body: { sandbox: { image: MINIMAL, network: 'bridge' } } });
      expect(a.status).to.equal(400);
      expect(await snapshotCounts(projectId)).to.deep.equal(before);
    });

    it('finding 7: a sandbox older than its timeout is deleted by the reaper: sessions stopped with the reason, container removed', async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const sb = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId, timeout: 1 } });
      expect(sb.status).to.equal(201);
      expect(sb.body.timeout).to.equal(1);
      const keep = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: agent.id, project_id: projectId } });
      const s = await call('POST', `/api/v1/sandboxes/${sb.body.id}/sessions`, { token: owner.token, body: {} });
      expect(s.status).to.equal(201);
      const cid = sb.body.container_id as string;
      expect((await inspect(cid))?.State.Running).to.equal(true);
      await new Promise((r) => setTimeout(r, 1200));

      const { startReaper } = await import('../src/runtime/reaper.js');
      const reaper = startReaper(log);
      reaper.stop();
      await reaper.sweep();

      expect((await db('sandboxes').where({ id: sb.body.id }).first()).state).to.equal('stopped');
      const session = await db('sessions').where({ id: s.body.id }).first();
      expect(session.status).to.equal('stopped');
      const last = await db('session_events').where({ session_id: s.body.id, event_type: 'status' }).orderBy('event_index', 'desc').first();
      expect(last.payload.reason).to.equal('sandbox timeout (1s) reached');
      await waitFor('the container to be removed', async () => (await inspect(cid)) === null, 10_000);
      // A sandbox without a timeout is left alone.
      expect((await db('sandboxes').where({ id: keep.body.id }).first()).state).to.equal('active');
      expect((await inspect(keep.body.container_id))?.State.Running).to.equal(true);
      await call('DELETE', `/api/v1/sandboxes/${keep.body.id}`, { token: owner.token });
    });
  });

  describe('on an api and worker with quotas and bridge permitted', () => {
    let api: Proc | undefined;
    let worker: Proc | undefined;
    let url = '';
    const prefix = `h-caps-quota-${process.pid}`;

    before(async () => {
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      const env = {
        TROUPE_REDIS_PREFIX: prefix,
        TROUPE_PROJECT_MAX_SANDBOXES: '3',
        TROUPE_PROJECT_MAX_RUNNING_SESSIONS: '2',
        TROUPE_ALLOW_BRIDGE_NETWORK: 'true',
        TROUPE_POOL_SIZE: '0',
        TROUPE_LOG_LEVEL: 'warn',
        PORT: String(port),
        HOST: '127.0.0.1',
      };
      [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
    });

    after(async () => {
      for (const p of [api, worker]) {
        if (!p) continue;
        p.child.kill('SIGTERM');
        await Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]);
      }
    });

    async function req(method: string, path: string, token: string, body?: unknown) {
      const res = await fetch(url + path, {
        method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    }

    async function projectHere() {
      const owner = { id: `caps-${crypto.randomBytes(4).toString('hex')}`, token: '' };
      owner.token = await signUserToken(owner.id);
      const p = await req('POST', '/api/v1/projects', owner.token, { name: owner.id });
      expect(p.status).to.equal(201);
      return { owner, projectId: p.body.id as string };
    }

    it('finding 7: concurrent sandbox creations stop at TROUPE_PROJECT_MAX_SANDBOXES; the rest get 429 + Retry-After and create nothing', async () => {
      const { owner, projectId } = await projectHere();
      const agent = await req('POST', `/api/v1/projects/${projectId}/agents`, owner.token, { name: 'a', llm_provider: 'scripted', sandbox: { image: MINIMAL } });
      const results = await Promise.all(Array.from({ length: 7 }, () => req('POST', '/api/v1/sandboxes', owner.token, { agent: agent.body.id, project_id: projectId })));
      const ok = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status === 429);
      expect(ok).to.have.length(3);
      expect(refused).to.have.length(4);
      for (const r of refused) {
        expect(r.body.error).to.contain('Sandbox quota reached: this project has 3 sandboxes that are not stopped, and the limit is 3 (TROUPE_PROJECT_MAX_SANDBOXES)');
        expect(r.body.error).to.contain('DELETE /api/v1/sandboxes/:id');
        expect(r.headers.get('retry-after')).to.equal('60');
      }
      expect(await db('sandboxes').where({ project_id: projectId }).count('* as n').first()).to.deep.equal({ n: '3' });
      // A session with its own sandbox needs room too.
      const s = await req('POST', '/api/v1/sessions', owner.token, { agent_id: agent.body.id, project_id: projectId });
      expect(s.status).to.equal(429);
      expect(await db('sessions').where({ project_id: projectId }).count('* as n').first()).to.deep.equal({ n: '0' });
      // Deleting one frees its place.
      expect((await req('DELETE', `/api/v1/sandboxes/${ok[0].body.id}`, owner.token)).status).to.equal(200);
      expect((await req('POST', '/api/v1/sandboxes', owner.token, { agent: agent.body.id, project_id: projectId })).status).to.equal(201);
      for (const sb of await db('sandboxes').where({ project_id: projectId }).whereNot({ state: 'stopped' })) await req('DELETE', `/api/v1/sandboxes/${sb.id}`, owner.token);
    });

    it('finding 7: concurrent session starts stop at TROUPE_PROJECT_MAX_RUNNING_SESSIONS; waking an idle one counts; stopping one frees room', async () => {
      const { owner, projectId } = await projectHere();
      const busy = { turns: [{ text: 'working', tool_calls: [{ name: 'bash', input: { command: 'sleep 60' } }] }] };
      const agent = await req('POST', `/api/v1/projects/${projectId}/agents`, owner.token, { name: 'busy', llm_provider: 'scripted', sandbox: { image: MINIMAL }, script: busy });
      // One shared sandbox, so only the running-session quota is in play.
      const sb = await req('POST', '/api/v1/sandboxes', owner.token, { agent: agent.body.id, project_id: projectId });
      expect(sb.status).to.equal(201);
      const idle = await req('POST', `/api/v1/sandboxes/${sb.body.id}/sessions`, owner.token, {});
      expect(idle.status).to.equal(201); // starts idle: not counted
      const results = await Promise.all(Array.from({ length: 5 }, () => req('POST', `/api/v1/sandboxes/${sb.body.id}/sessions`, owner.token, { message: 'go' })));
      const ok = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status === 429);
      expect(ok).to.have.length(2);
      expect(refused).to.have.length(3);
      expect(refused[0].body.error).to.contain('this project has 2 sessions queued or running, and the limit is 2 (TROUPE_PROJECT_MAX_RUNNING_SESSIONS)');
      expect(refused[0].body.error).to.contain('pause or stop one');
      expect(refused[0].headers.get('retry-after')).to.equal('10');
      expect(await db('sessions').where({ project_id: projectId }).count('* as n').first()).to.deep.equal({ n: '3' });

      // Waking the idle session would be a third: refused, and its log is unchanged.
      const eventsBefore = (await db('sessions').where({ id: idle.body.id }).first()).next_event_index;
      const wake = await req('POST', `/api/v1/sessions/${idle.body.id}/messages?wait=false`, owner.token, { role: 'user', content: [{ type: 'text', text: 'wake up' }] });
      expect(wake.status).to.equal(429);
      const after = await db('sessions').where({ id: idle.body.id }).first();
      expect(after.status).to.equal('idle');
      expect(after.next_event_index).to.equal(eventsBefore);

      // Stopping one frees its place.
      expect((await req('POST', `/api/v1/projects/${projectId}/conversations/${ok[0].body.id}/stop`, owner.token, {})).status).to.equal(200);
      const woke = await req('POST', `/api/v1/sessions/${idle.body.id}/messages?wait=false`, owner.token, { role: 'user', content: [{ type: 'text', text: 'wake up' }] });
      expect(woke.status).to.equal(202);
      expect((await req('DELETE', `/api/v1/sandboxes/${sb.body.id}`, owner.token)).status).to.equal(200);
    });

    it('finding 8: bridge only for owners/admins where permitted: a member or an agent key gets 403, the owner gets a bridged container', async () => {
      const { owner, projectId } = await projectHere();
      const agent = await req('POST', `/api/v1/projects/${projectId}/agents`, owner.token, { name: 'net', llm_provider: 'scripted', sandbox: { image: MINIMAL } });
      const member = { id: `m-${crypto.randomBytes(4).toString('hex')}`, token: '' };
      member.token = await signUserToken(member.id);
      expect((await req('POST', `/api/v1/projects/${projectId}/members`, owner.token, { user_id: member.id, role: 'member' })).status).to.equal(201);
      const key = (await req('POST', `/api/v1/projects/${projectId}/agents/${agent.body.id}/api-keys`, owner.token, { name: 'k' })).body.key as string;
      const before = await snapshotCounts(projectId);
      for (const token of [member.token, key]) {
        const r = await req('POST', '/api/v1/sandboxes', token, { agent: agent.body.id, project_id: projectId, limits: { network: 'bridge' } });
        expect(r.status).to.equal(403);
        expect(r.body.error).to.contain('Only project owners and admins');
      }
      const p = await req('PATCH', `/api/v1/projects/${projectId}/agents/${agent.body.id}`, member.token, { sandbox: { image: MINIMAL, network: 'bridge' } });
      expect(p.status).to.equal(403);
      expect(await snapshotCounts(projectId)).to.deep.equal(before);

      const r = await req('POST', '/api/v1/sandboxes', owner.token, { agent: agent.body.id, project_id: projectId, limits: { network: 'bridge' } });
      expect(r.status).to.equal(201);
      expect((await inspect(r.body.container_id))!.HostConfig.NetworkMode).to.equal('bridge');
      // Once an owner has granted it, a member may keep it while changing other settings.
      expect((await req('PATCH', `/api/v1/projects/${projectId}/agents/${agent.body.id}`, owner.token, { sandbox: { image: MINIMAL, network: 'bridge' } })).status).to.equal(200);
      expect((await req('PATCH', `/api/v1/projects/${projectId}/agents/${agent.body.id}`, member.token, { sandbox: { image: MINIMAL, network: 'bridge', memory_mb: 256 } })).status).to.equal(200);
      await req('DELETE', `/api/v1/sandboxes/${r.body.id}`, owner.token);
    });
  });
});
