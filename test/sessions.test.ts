import { expect } from 'chai';
import Docker from 'dockerode';
import { call, newProject, newAgent, sessionWorker, waitFor, snapshotCounts, addMember } from './support/harness.js';
import { db } from '../src/db/knex.js';
import { sessionQueue } from '../src/runtime/queue.js';

const docker = new Docker();

async function sessionRow(id: string) {
  return db('sessions').where({ id }).first();
}
async function eventsOf(id: string) {
  return db('session_events').where({ session_id: id }).orderBy('event_index');
}
async function containerOf(sessionId: string): Promise<string> {
  return waitFor('container', async () => {
    const s = await db('sessions as s').join('sandboxes as sb', 'sb.id', 's.sandbox_id').where('s.id', sessionId).first('sb.container_id');
    return s?.container_id;
  });
}
async function dockerState(containerId: string): Promise<string | null> {
  try {
    return (await docker.getContainer(containerId).inspect()).State.Status;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}
async function readInContainer(containerId: string, cmd: string): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  const out = new (await import('node:stream')).PassThrough();
  docker.modem.demuxStream(stream, out, out);
  out.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => stream.on('end', r));
  return Buffer.concat(chunks).toString('utf8');
}
const status = (id: string) => async () => (await sessionRow(id))?.status as string;
/** Waits until no activation of the session is queued or running: nothing can move it on its own then. */
async function activationsDone(id: string) {
  await waitFor('no activation queued or running', async () =>
    !(await sessionQueue().getJobs(['active', 'waiting', 'delayed', 'prioritized'])).some((j) => j?.data?.sessionId === id), 10_000);
}

describe('session actor', function () {
  this.timeout(60_000);
  before(async () => {
    await sessionWorker();
  });

  it('runs bash in its own container, writes a file that is really there, and records events in order', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: {
        turns: [
          { text: 'Writing the file now.', tool_calls: [{ name: 'bash', input: { command: 'echo hello-from-agent > /workspace/out.txt && cat /workspace/out.txt' } }] },
          { text: 'Done: the file is written.' },
        ],
      },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.handle, project_id: projectId, message: 'write a file' } });
    expect(r.status).to.equal(201);
    expect(r.body.state).to.equal('active');
    const id = r.body.id;
    await waitFor('idle', async () => (await status(id)()) === 'idle');
    const cid = await containerOf(id);
    expect(await readInContainer(cid, 'cat /workspace/out.txt')).to.equal('hello-from-agent\n');
    const events = await eventsOf(id);
    expect(events.map((e) => e.event_index)).to.deep.equal(events.map((_, i) => i));
    const kinds = events.filter((e) => e.event_type !== 'status').map((e) => `${e.event_type}:${e.event_source}`);
    expect(kinds).to.deep.equal(['message:user', 'message:agent', 'tool_use:agent', 'tool_result:environment', 'message:agent']);
    const result = events.find((e) => e.event_type === 'tool_result');
    expect(result.payload).to.include({ is_error: false, exit_code: 0 });
    expect(result.payload.content).to.contain('hello-from-agent');
    const statuses = events.filter((e) => e.event_type === 'status').map((e) => e.payload.status);
    expect(statuses).to.deep.equal(['queued', 'running', 'idle']);

    const got = await call('GET', `/api/v1/sessions/${id}`, { token: owner.token });
    expect(got.body.messages.map((m: any) => m.role)).to.deep.equal(['user', 'assistant', 'user', 'assistant']);
    expect(got.body.messages[1].content.map((b: any) => b.type)).to.deep.equal(['text', 'tool_use']);
    expect(got.body.messages[2].content[0]).to.include({ type: 'tool_result', is_error: false });
    expect(got.body.container_id).to.equal(cid);
  });

  it('finish completes the session; the 004 views agree', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'All done.', tool_calls: [{ name: 'finish', input: { summary: 'wrote nothing' } }] }] },
    });
    const r = await call('POST', '/api/sessions', { token: owner.token, body: { agent_id: agent.id, prompt: 'finish please', task_id: 'task-1' } });
    expect(r.status).to.equal(201);
    expect(r.body.status).to.equal('created');
    await waitFor('completed', async () => (await status(r.body.id)()) === 'completed');
    const conv = await call('GET', `/api/v1/projects/${projectId}/conversations/${r.body.id}?include_events=true`, { token: owner.token });
    expect(conv.body).to.include({ status: 'completed', trigger_type: 'api', task_id: 'task-1', iteration_count: 1 });
    expect(conv.body.finished_at).to.be.a('string');
    expect(conv.body.events.at(-1).payload).to.include({ status: 'completed' });
    // finish is a successful tool call whose result is the summary (not an error for the model)
    const finished = conv.body.events.find((e: { event_type: string }) => e.event_type === 'tool_result');
    expect(finished.payload).to.include({ name: 'finish', content: 'wrote nothing', is_error: false });
    const list = await call('GET', `/api/v1/projects/${projectId}/agents/${agent.handle}/conversations?status=completed`, { token: owner.token });
    expect(list.body.total).to.equal(1);
    expect(list.body.conversations[0].id).to.equal(r.body.id);
    const s001 = await call('GET', `/api/sessions/${r.body.id}`, { token: owner.token });
    expect(s001.body).to.include({ status: 'completed', message_count: 2 });
    const evs = await call('GET', `/api/v1/projects/${projectId}/conversations/${r.body.id}/events?limit=2`, { token: owner.token });
    expect(evs.body.events).to.have.length(2);
    expect(evs.body.has_more).to.equal(true);
    expect(evs.body.total).to.be.greaterThan(2);
  });

  it('pause freezes the container and frees the job; resume finishes; stop removes the container', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: {
        turns: [
          { text: 'step one', tool_calls: [{ name: 'bash', input: { command: 'sleep 3; echo slept' } }] },
          { text: 'after the sleep', tool_calls: [{ name: 'bash', input: { command: 'echo second > /workspace/second.txt' } }] },
          { text: 'finished' },
        ],
      },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    const id = r.body.id;
    await waitFor('tool running', async () => (await eventsOf(id)).some((e) => e.event_type === 'tool_use'));
    const cid = await containerOf(id);
    const t0 = Date.now();
    const p = await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/pause`, { token: owner.token });
    expect(p.status).to.equal(200);
    expect(p.body).to.deep.equal({ status: 'paused' });
    expect(await dockerState(cid)).to.equal('paused');
    expect(Date.now() - t0).to.be.lessThan(1000);
    await waitFor('job released', async () => (await sessionQueue().getActiveCount()) === 0 || !(await sessionQueue().getActive()).some((j) => j.data.sessionId === id), 2000);
    expect((await sessionRow(id)).status).to.equal('paused');
    // illegal transitions
    expect((await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/pause`, { token: owner.token })).status).to.equal(409);

    const res = await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/resume`, { token: owner.token });
    expect(res.body).to.deep.equal({ status: 'running' });
    expect(await dockerState(cid)).to.equal('running');
    await waitFor('idle after resume', async () => (await status(id)()) === 'idle', 20_000);
    expect(await readInContainer(cid, 'cat /workspace/second.txt')).to.equal('second\n');
    const events = await eventsOf(id);
    expect(events.map((e) => e.event_index)).to.deep.equal(events.map((_, i) => i));

    const st = await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/stop`, { token: owner.token });
    expect(st.body).to.deep.equal({ status: 'stopped' });
    expect(await dockerState(cid)).to.equal(null);
    expect((await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/resume`, { token: owner.token })).status).to.equal(409);
    expect((await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/message`, { token: owner.token, body: { message: 'hi' } })).status).to.equal(409);
  });

  it('interrupt during a long tool call kills the process and leaves the session idle', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'sleeping', tool_calls: [{ name: 'bash', input: { command: 'sleep 300' } }] }, { text: 'never' }] },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    const id = r.body.id;
    const cid = await containerOf(id);
    await waitFor('sleep running', async () => (await readInContainer(cid, 'ps')).includes('sleep 300'));
    const i = await call('POST', `/api/v1/sessions/${id}/interrupt`, { token: owner.token });
    expect(i.status).to.equal(200);
    expect(i.body.status).to.equal('idle');
    await waitFor('process gone', async () => !(await readInContainer(cid, 'ps')).includes('sleep 300'), 3000);
    expect(await dockerState(cid)).to.equal('running');
    const events = await eventsOf(id);
    const result = events.find((e) => e.event_type === 'tool_result');
    expect(result.payload).to.include({ is_error: true, interrupted: true });
    await activationsDone(id);
    expect((await sessionRow(id)).status).to.equal('idle');
  });

  it('an idle resume overlaps the worker claim with the unpause; a worker finding its container frozen wakes it', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'one' }, { text: 'two', tool_calls: [{ name: 'bash', input: { command: 'echo awake' } }] }, { text: 'done' }] },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    const id = r.body.id;
    await waitFor('idle', async () => (await status(id)()) === 'idle');
    const cid = await containerOf(id);
    await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/pause`, { token: owner.token });
    expect(await dockerState(cid)).to.equal('paused');
    const res = await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/resume`, { token: owner.token });
    expect(res.body).to.deep.equal({ status: 'running' });
    expect(await dockerState(cid)).to.equal('running');
    await waitFor('idle after resume', async () => (await status(id)()) === 'idle');

    // The container frozen behind the session's back (an operator, a racing pause): the next
    // activation unpauses it before its first exec instead of wedging on it.
    await docker.getContainer(cid).pause();
    await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/message`, { token: owner.token, body: { message: 'again' } });
    await waitFor('idle after the tool', async () => (await eventsOf(id)).filter((e) => e.event_type === 'tool_result').length === 1 && (await status(id)()) === 'idle', 20_000);
    const result = (await eventsOf(id)).find((e) => e.event_type === 'tool_result');
    expect(result.payload.content).to.contain('awake');
    expect(await dockerState(cid)).to.equal('running');
  });

  it('a message while running is delivered at the turn boundary; while paused it waits for resume', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: {
        turns: [
          { text: 'working', tool_calls: [{ name: 'bash', input: { command: 'sleep 1' } }] },
          { text: 'first answer' },
          { text: 'second answer' },
          { text: 'third answer' },
        ],
      },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'start' } });
    const id = r.body.id;
    await waitFor('tool running', async () => (await eventsOf(id)).some((e) => e.event_type === 'tool_use'));
    const m = await call('POST', `/api/sessions/${id}/message`, { token: owner.token, body: { content: 'also this' } });
    expect(m.status).to.equal(200);
    expect(m.body.status).to.equal('sent');
    await waitFor('idle', async () => (await status(id)()) === 'idle');
    let msgs = (await eventsOf(id)).filter((e) => e.event_type === 'message').map((e) => e.payload.message);
    expect(msgs).to.deep.equal(['start', 'working', 'also this', 'first answer']);

    await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/pause`, { token: owner.token });
    const pm = await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/message`, { token: owner.token, body: { message: 'while paused' } });
    expect(pm.status).to.equal(200);
    await activationsDone(id);
    expect((await sessionRow(id)).status).to.equal('paused');
    await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/resume`, { token: owner.token });
    await waitFor('answered', async () => (await eventsOf(id)).some((e) => e.payload.message === 'second answer'));
    msgs = (await eventsOf(id)).filter((e) => e.event_type === 'message').map((e) => e.payload.message);
    expect(msgs.slice(-2)).to.deep.equal(['while paused', 'second answer']);

    // seed 002: send and wait for the reply
    await waitFor('idle again', async () => (await status(id)()) === 'idle');
    const reply = await call('POST', `/api/v1/sessions/${id}/messages`, { token: owner.token, body: { role: 'user', content: [{ type: 'text', text: 'and now?' }] } });
    expect(reply.status).to.equal(200);
    expect(reply.body).to.include({ role: 'assistant', session_id: id });
    expect(reply.body.content).to.deep.equal([{ type: 'text', text: 'third answer' }]);
  });

  it('Idempotency-Key: a retried create returns the same session and creates one', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const headers = { 'idempotency-key': 'create-once-123' };
    const a = await call('POST', '/api/v1/sessions', { token: owner.token, headers, body: { agent_id: agent.id } });
    const b = await call('POST', '/api/v1/sessions', { token: owner.token, headers, body: { agent_id: agent.id } });
    expect(a.status).to.equal(201);
    expect(b.status).to.equal(201);
    expect(b.body.id).to.equal(a.body.id);
    expect((await db('sessions').where({ agent_id: agent.id })).length).to.equal(1);
    // The first attempt committed but its answer was lost: the session remembers the key.
    await db('idempotency_keys').where({ key: 'create-once-123' }).del();
    const c = await call('POST', '/api/v1/sessions', { token: owner.token, headers, body: { agent_id: agent.id } });
    expect(c.body.id).to.equal(a.body.id);
    expect((await db('sessions').where({ agent_id: agent.id })).length).to.equal(1);
    const m1 = await call('POST', `/api/sessions/${a.body.id}/message`, { token: owner.token, headers: { 'idempotency-key': 'm1' }, body: { content: 'x' } });
    const m2 = await call('POST', `/api/sessions/${a.body.id}/message`, { token: owner.token, headers: { 'idempotency-key': 'm1' }, body: { content: 'x' } });
    expect(m2.body.message_id).to.equal(m1.body.message_id);
    expect((await eventsOf(a.body.id)).filter((e) => e.event_type === 'message' && e.event_source === 'user')).to.have.length(1);
  });

  it('limits: max_iterations and timeout fail the session with a reason', async () => {
    const { owner, projectId } = await newProject();
    const loop = { turns: Array.from({ length: 10 }, () => ({ text: 'again', tool_calls: [{ name: 'bash', input: { command: 'true' } }] })) };
    const agent = await newAgent(projectId, owner.token, { max_iterations: 2, script: loop });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'loop' } });
    await waitFor('failed', async () => (await status(r.body.id)()) === 'failed');
    expect((await sessionRow(r.body.id)).error).to.match(/max_iterations \(2\)/);

    const slow = await newAgent(projectId, owner.token, { timeout_minutes: 1, script: { turns: [{ text: 'x', tool_calls: [{ name: 'bash', input: { command: 'sleep 100' } }] }] } });
    const t = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: slow.id, message: 'slow' } });
    await waitFor('running', async () => (await status(t.body.id)()) === 'running');
    // Pretend the session started long ago rather than wait a minute.
    await db('sessions').where({ id: t.body.id }).update({ started_at: db.raw("now() - interval '2 minutes'") });
    await call('POST', `/api/v1/sessions/${t.body.id}/interrupt`, { token: owner.token });
    await call('POST', `/api/v1/projects/${projectId}/conversations/${t.body.id}/message`, { token: owner.token, body: { message: 'continue' } });
    await waitFor('failed by timeout', async () => (await status(t.body.id)()) === 'failed');
    expect((await sessionRow(t.body.id)).error).to.match(/timeout_minutes \(1\) exceeded/);
  });

  it('sandbox hardening: no network, fork bomb and memory hog stay inside their limits', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      sandbox: { image: 'troupe-sandbox-minimal:latest', memory_mb: 64 },
      script: {
        turns: [
          { text: 'net', tool_calls: [{ name: 'bash', input: { command: 'ls /sys/class/net; wget -T 2 -q -O- http://1.1.1.1 && echo NET-OK || echo NET-FAILED' } }] },
          { text: 'fork', tool_calls: [{ name: 'bash', input: { command: 'for i in $(seq 1 400); do sleep 5 & done 2>&1 | tail -1; echo spawned', timeout_seconds: 10 } }] },
          { text: 'mem', tool_calls: [{ name: 'bash', input: { command: 'dd if=/dev/zero bs=1M count=200 | cat > /dev/shm/fill 2>&1; echo exit=$?', timeout_seconds: 20 } }] },
          { text: 'survived' },
        ],
      },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'misbehave' } });
    await waitFor('idle', async () => (await status(r.body.id)()) === 'idle', 45_000);
    const results = (await eventsOf(r.body.id)).filter((e) => e.event_type === 'tool_result').map((e) => String(e.payload.content));
    expect(results[0]).to.contain('NET-FAILED').and.not.contain('NET-OK');
    expect(results[0]).to.not.match(/eth0/);
    expect(results[1]).to.match(/can't fork|Resource temporarily unavailable|fork/i);
    const cid = await containerOf(r.body.id);
    const info = await docker.getContainer(cid).inspect();
    expect(info.HostConfig.Memory).to.equal(64 * 1024 * 1024);
    expect(info.HostConfig.NetworkMode).to.equal('none');
    expect(info.HostConfig.CapDrop).to.include('ALL');
    expect((await call('GET', '/healthz')).status).to.equal(200);
  });

  it("bad input → 4xx envelope and nothing changed; another project's session → 404 on every family", async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    const id = s.body.id;
    const before = await snapshotCounts(projectId);
    const bad: Array<[string, string, unknown]> = [
      ['POST', '/api/v1/sessions', { agent_id: 5 }],
      ['POST', '/api/v1/sessions', { agent_id: 'no-such-agent', project_id: projectId }],
      ['POST', '/api/v1/sessions', { agent_id: agent.id, extra: 1 }],
      ['POST', '/api/sessions', { prompt: 'no agent' }],
      ['POST', `/api/sessions/${id}/message`, { content: '' }],
      ['PATCH', `/api/sessions/${id}`, { status: 'exploded' }],
      ['PATCH', `/api/sessions/${id}`, {}],
      ['POST', `/api/v1/sessions/${id}/messages`, { role: 'assistant', content: [{ type: 'text', text: 'x' }] }],
      ['POST', `/api/v1/sessions/${id}/messages`, { role: 'user', content: [] }],
      ['POST', `/api/v1/projects/${projectId}/conversations/${id}/message`, { msg: 'x' }],
      ['POST', '/api/v1/sandboxes', { image: 'x' }],
    ];
    for (const [method, path, body] of bad) {
      const r = await call(method, path, { token: owner.token, body });
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).to.be.within(400, 499);
      expect(r.body.error).to.be.a('string');
    }
    expect((await call('GET', `/api/v1/projects/${projectId}/agents/${agent.id}/conversations?limit=0`, { token: owner.token })).status).to.equal(400);
    expect((await call('GET', '/api/sessions?status=bogus', { token: owner.token })).status).to.equal(400);
    expect(await snapshotCounts(projectId)).to.deep.equal(before);

    const other = await newProject();
    const o = other.owner.token;
    const before2 = await snapshotCounts(projectId);
    const foreign: Array<[string, string, unknown?]> = [
      ['GET', `/api/v1/sessions/${id}`], ['POST', `/api/v1/sessions/${id}/interrupt`, {}],
      ['POST', `/api/v1/sessions/${id}/messages`, { role: 'user', content: [{ type: 'text', text: 'x' }] }],
      ['GET', `/api/sessions/${id}`], ['PATCH', `/api/sessions/${id}`, { status: 'paused' }], ['DELETE', `/api/sessions/${id}`],
      ['POST', `/api/sessions/${id}/message`, { content: 'x' }],
      ['GET', `/api/v1/projects/${projectId}/conversations/${id}`], ['POST', `/api/v1/projects/${projectId}/conversations/${id}/stop`, {}],
      ['GET', `/api/v1/projects/${other.projectId}/conversations/${id}`], ['GET', `/api/v1/sandboxes/${s.body.sandbox_id}`],
      ['POST', '/api/v1/sessions', { agent_id: agent.id, project_id: projectId }],
    ];
    for (const [method, path, body] of foreign) {
      const r = await call(method, path, { token: o, body });
      expect(r.status, `${method} ${path}`).to.equal(404);
    }
    expect((await call('GET', '/api/sessions', { token: o })).body.sessions).to.have.length(0);
    expect(await snapshotCounts(projectId)).to.deep.equal(before2);

    const viewer = await addMember(projectId, owner.token, 'viewer');
    expect((await call('POST', `/api/v1/projects/${projectId}/conversations/${id}/stop`, { token: viewer.token, body: {} })).status).to.equal(403);
    expect((await call('GET', `/api/v1/sessions/${id}`, { token: viewer.token })).status).to.equal(200);
  });
});
