import { expect } from 'chai';
import crypto from 'node:crypto';
import Docker from 'dockerode';
import { signUserToken } from '../src/http/auth.js';
import { sessionWorker, waitFor } from './support/harness.js';
import { freePort, startApi, startWorker, type Proc } from './support/processes.js';

/**
 * The api owns no container: it runs here with DOCKER_HOST pointing at a socket that does not
 * exist, next to this process's worker (which has Docker), and the whole lifecycle works because
 * every container operation is a command the worker acknowledges. What Docker itself reports is
 * the judge. Then an api whose commands nobody takes answers 503, keeps its state consistent,
 * and converges once a worker comes.
 */
describe('the api never touches Docker (it commands the worker)', function () {
  this.timeout(120_000);
  const docker = new Docker();
  const procs: Proc[] = [];
  let token = '';
  after(() => {
    for (const p of procs) p.child.kill('SIGKILL');
  });

  const client = (base: string) => async (method: string, path: string, body?: unknown) => {
    const r = await fetch(base + path, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: (await r.json().catch(() => null)) as any, headers: r.headers };
  };
  const containerState = async (id: string) => {
    try {
      const info = await docker.getContainer(id).inspect();
      return info.State.Paused ? 'paused' : info.State.Status;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return 'gone';
      throw err;
    }
  };

  it('sessions and sandboxes: create, pause, resume, interrupt, message, stop, delete', async () => {
    await sessionWorker();
    token = await signUserToken(`nodocker-${crypto.randomBytes(3).toString('hex')}`);
    const port = await freePort();
    // Same Redis prefix as this process's worker, so its commands reach it.
    const api = await startApi({ PORT: String(port), HOST: '127.0.0.1', DOCKER_HOST: 'unix:///nonexistent/docker.sock', TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX! });
    procs.push(api);
    const call = client(`http://127.0.0.1:${port}`);

    const project = await call('POST', '/api/v1/projects', { name: 'no-docker' });
    const pid = project.body.id;
    const agent = await call('POST', `/api/v1/projects/${pid}/agents`, {
      name: 'worker-owned', llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' },
      script: { turns: [{ text: 'working', tool_calls: [{ name: 'bash', input: { command: 'sleep 30' } }] }, { text: 'done' }, { text: 'again' }] },
    });
    const created = await call('POST', '/api/v1/sessions', { agent_id: agent.body.id, project_id: pid, message: 'go' });
    expect(created.status).to.equal(201);
    const sid = created.body.id;
    const conv = `/api/v1/projects/${pid}/conversations/${sid}`;
    const running = await waitFor('the tool to run', async () => {
      const r = await call('GET', `/api/v1/sessions/${sid}`);
      return r.body.status === 'running' && r.body.container_id && r.body.messages.some((m: any) => m.content.some((b: any) => b.type === 'tool_use')) ? r.body : null;
    });
    expect(await containerState(running.container_id)).to.equal('running');

    const paused = await call('POST', `${conv}/pause`, {});
    expect(paused.status).to.equal(200);
    expect(paused.body).to.deep.equal({ status: 'paused' });
    // Answered once Docker says so: no waiting here.
    expect(await containerState(running.container_id)).to.equal('paused');

    const resumed = await call('POST', `${conv}/resume`, {});
    expect(resumed.body).to.deep.equal({ status: 'running' });
    expect(await containerState(running.container_id)).to.equal('running');

    const interrupted = await call('POST', `/api/v1/sessions/${sid}/interrupt`, {});
    expect(interrupted.status).to.equal(200);
    expect(interrupted.body.status).to.equal('idle');

    const sent = await call('POST', `${conv}/message`, { message: 'once more' });
    expect(sent.status).to.be.oneOf([200, 201, 202]);
    await waitFor('the next turn to end', async () => (await call('GET', conv)).body.status === 'idle');

    const stopped = await call('POST', `${conv}/stop`, {});
    expect(stopped.body).to.deep.equal({ status: 'stopped' });
    expect(await containerState(running.container_id)).to.equal('gone');

    // Seed 002 sandboxes: the container starts when the sandbox is created.
    const sb = await call('POST', '/api/v1/sandboxes', { agent: agent.body.id, project_id: pid });
    expect(sb.status).to.equal(201);
    expect(await containerState(sb.body.container_id)).to.equal('running');
    expect((await call('POST', `/api/v1/sandboxes/${sb.body.id}/pause`, {})).body.state).to.equal('paused');
    expect(await containerState(sb.body.container_id)).to.equal('paused');
    expect((await call('POST', `/api/v1/sandboxes/${sb.body.id}/resume`, {})).body.state).to.equal('active');
    expect(await containerState(sb.body.container_id)).to.equal('running');
    expect((await call('DELETE', `/api/v1/sandboxes/${sb.body.id}`)).body.state).to.equal('stopped');
    expect(await containerState(sb.body.container_id)).to.equal('gone');

    // An allowed image the engine does not have: the worker's refusal comes back as a 422, nothing left.
    const bad = await call('POST', '/api/v1/sandboxes', { agent: agent.body.id, project_id: pid, image: 'troupe-sandbox-minimal:no-such-tag' });
    expect(bad.status).to.equal(422);
    expect(bad.body.error).to.match(/Could not start the sandbox/);
    expect((await call('GET', `/api/v1/sandboxes?project_id=${pid}`)).body.map((x: any) => x.image)).to.not.include('troupe-sandbox-minimal:no-such-tag');

    // Readiness comes from the workers' heartbeats, not from the api's own (missing) Docker.
    const ready = await call('GET', '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.body.workers.dockerOk).to.be.greaterThan(0);
  });

  it('no worker answers: 503 with Retry-After, the state stays consistent, and a worker that comes later converges', async () => {
    token ||= await signUserToken(`nodocker-${crypto.randomBytes(3).toString('hex')}`);
    const prefix = `troupe-noworker-${crypto.randomBytes(3).toString('hex')}`;
    const port = await freePort();
    const env = { TROUPE_REDIS_PREFIX: prefix, TROUPE_INSTANCE: process.env.TROUPE_INSTANCE ?? 'test', TROUPE_REAPER_INTERVAL_MS: '600000' };
    procs.push(await startApi({ ...env, PORT: String(port), HOST: '127.0.0.1', DOCKER_HOST: 'unix:///nonexistent/docker.sock', TROUPE_COMMAND_TIMEOUT_MS: '1500' }));
    const call = client(`http://127.0.0.1:${port}`);
    const pid = (await call('POST', '/api/v1/projects', { name: 'no-worker' })).body.id;
    const agent = await call('POST', `/api/v1/projects/${pid}/agents`, {
      name: 'waiting', llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' }, script: { turns: [{ text: 'hello' }] },
    });
    const sid = (await call('POST', '/api/v1/sessions', { agent_id: agent.body.id, project_id: pid, message: 'hi' })).body.id;
    const conv = `/api/v1/projects/${pid}/conversations/${sid}`;

    const paused = await call('POST', `${conv}/pause`, {});
    expect(paused.status).to.equal(503);
    expect(paused.headers.get('retry-after')).to.equal('5');
    expect(paused.body.error).to.match(/No worker confirmed "sandbox.pause"/);
    // The intent is recorded: the session is paused (a second pause is an illegal transition).
    expect((await call('GET', conv)).body.status).to.equal('paused');
    expect((await call('POST', `${conv}/pause`, {})).status).to.equal(409);

    procs.push(await startWorker(env));
    const resumed = await call('POST', `${conv}/resume`, {});
    expect(resumed.status).to.equal(200);
    await waitFor('the late worker to run the session', async () => (await call('GET', conv)).body.status === 'idle', 30_000);
  });
});
