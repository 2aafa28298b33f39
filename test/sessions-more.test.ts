import { expect } from 'chai';
import Docker from 'dockerode';
import { call, newProject, newAgent, sessionWorker, waitFor } from './support/harness.js';
import { startFakeAnthropic, startFakeOpenAI } from './support/fake-model-servers.js';
import { db } from '../src/db/knex.js';
import { log } from '../src/log.js';

const docker = new Docker();
const statusOf = async (id: string) => (await db('sessions').where({ id }).first())?.status;
const eventsOf = (id: string) => db('session_events').where({ session_id: id }).orderBy('event_index');
async function dockerState(id: string) {
  try {
    return (await docker.getContainer(id).inspect()).State.Status;
  } catch {
    return null;
  }
}

describe('sessions with real SDK clients, sandboxes, housekeeping', function () {
  this.timeout(60_000);
  before(() => sessionWorker());

  it('anthropic: the SDK streams a tool call and an answer; skills trigger; the key never leaks', async () => {
    const fake = await startFakeAnthropic({
      apiKey: 'sk-ant-TEST-KEY-1',
      responses: [
        { text: 'Let me write it.', toolCalls: [{ name: 'write_file', input: { path: 'notes/hello.txt', content: 'written through anthropic' } }] },
        { text: 'The file is written.' },
      ],
    });
    try {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, { llm_provider: 'anthropic', llm_model: 'claude-test', llm_base_url: fake.url, llm_api_key: 'sk-ant-TEST-KEY-1' });
      await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/skills`, {
        token: owner.token, body: { skill_name: 'reviewing', skill_content: '# REVIEW-SKILL-BODY', triggers: ['review'] },
      });
      const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'please review and write a note' } });
      await waitFor('idle', async () => (await statusOf(r.body.id)) === 'idle');
      const events = await eventsOf(r.body.id);
      expect(events.filter((e) => e.event_type === 'message').map((e) => e.payload.message)).to.deep.equal(['please review and write a note', 'Let me write it.', 'The file is written.']);
      const cid = (await db('sandboxes').where({ id: r.body.sandbox_id }).first()).container_id;
      const { DockerSandboxDriver } = await import('../src/runtime/sandbox/docker-driver.js');
      const content = await new DockerSandboxDriver({ docker, instance: 'test' }).readFile(cid, '/workspace/notes/hello.txt');
      expect(content.toString()).to.equal('written through anthropic');
      expect(fake.requests).to.have.length(2);
      expect(JSON.stringify(fake.requests[0].body.system)).to.contain('REVIEW-SKILL-BODY');
      const second = fake.requests[1].body.messages;
      expect(second.at(-1).content[0]).to.include({ type: 'tool_result' });
      expect(JSON.stringify(events)).to.not.contain('TEST-KEY');
      const views = await Promise.all([
        call('GET', `/api/v1/sessions/${r.body.id}`, { token: owner.token }),
        call('GET', `/api/v1/projects/${projectId}/conversations/${r.body.id}?include_events=true`, { token: owner.token }),
        call('GET', `/api/v1/projects/${projectId}/agents/${agent.id}`, { token: owner.token }),
      ]);
      for (const v of views) expect(JSON.stringify(v.body)).to.not.contain('TEST-KEY');
    } finally {
      await fake.close();
    }
  });

  it('openai-compatible: tool calls through the OpenAI SDK', async () => {
    const fake = await startFakeOpenAI({
      apiKey: 'sk-oai-TEST',
      responses: [{ text: 'Running.', toolCalls: [{ name: 'bash', input: { command: 'echo 6*7 | bc 2>/dev/null || echo 42' } }] }, { text: 'It is 42.' }],
    });
    try {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, { llm_provider: 'openai', llm_model: 'gpt-test', llm_base_url: fake.url, llm_api_key: 'sk-oai-TEST' });
      const r = await call('POST', '/api/sessions', { token: owner.token, body: { agent_id: agent.handle, prompt: 'what is 6*7?' } });
      await waitFor('idle', async () => (await statusOf(r.body.id)) === 'idle');
      const events = await eventsOf(r.body.id);
      const result = events.find((e) => e.event_type === 'tool_result');
      expect(result.payload.content).to.contain('42');
      expect(events.filter((e) => e.event_type === 'message').at(-1).payload.message).to.equal('It is 42.');
      const toolMsg = fake.requests[1].body.messages.find((m: any) => m.role === 'tool');
      expect(toolMsg.content).to.contain('42');
    } finally {
      await fake.close();
    }
  });

  it('a provider that rejects the key fails the session with a clear reason (not a hang)', async () => {
    const fake = await startFakeAnthropic({ apiKey: 'the-right-key' });
    try {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, { llm_provider: 'anthropic', llm_base_url: fake.url, llm_api_key: 'sk-WRONG-KEY' });
      const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'hi' } });
      await waitFor('failed', async () => (await statusOf(r.body.id)) === 'failed');
      const s = await db('sessions').where({ id: r.body.id }).first();
      expect(s.error).to.match(/rejected the API key/).and.match(/llm_api_key/);
      expect(s.error).to.not.contain('sk-WRONG-KEY');
    } finally {
      await fake.close();
    }
  });

  it('seed 002: a sandbox shared by two sessions; pause, resume and delete act on its container', async () => {
    const { owner, projectId } = await newProject();
    const writer = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'w', tool_calls: [{ name: 'bash', input: { command: 'echo shared > /workspace/shared.txt' } }] }] } });
    const sb = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: writer.handle, project_id: projectId, metadata: { purpose: 'test' }, env: { GREETING: 'hi-env' } } });
    expect(sb.status).to.equal(201);
    expect(sb.body.container_id).to.be.a('string');
    expect(JSON.stringify(sb.body)).to.not.contain('hi-env');
    expect(await dockerState(sb.body.container_id)).to.equal('running');
    const s1 = await call('POST', `/api/v1/sandboxes/${sb.body.id}/sessions`, { token: owner.token, body: { metadata: { purpose: 'code-review' }, message: 'write' } });
    expect(s1.status).to.equal(201);
    expect(s1.body).to.include({ sandbox_id: sb.body.id, state: 'active' });
    expect(s1.body.metadata).to.deep.equal({ purpose: 'code-review' });
    await waitFor('s1 idle', async () => (await statusOf(s1.body.id)) === 'idle');
    const s2 = await call('POST', `/api/v1/sandboxes/${sb.body.id}/sessions`, { token: owner.token, body: {} });
    const list = await call('GET', `/api/v1/sandboxes/${sb.body.id}/sessions`, { token: owner.token });
    expect(list.body.map((s: any) => s.id)).to.deep.equal([s1.body.id, s2.body.id]);
    const exec = await docker.getContainer(sb.body.container_id).exec({ Cmd: ['sh', '-c', 'cat /workspace/shared.txt; echo $GREETING'], AttachStdout: true });
    const out = await new Promise<string>((resolve) => {
      exec.start({}, (_e: unknown, stream: any) => {
        let buf = '';
        stream.on('data', (d: Buffer) => (buf += d.toString()));
        stream.on('end', () => resolve(buf));
      });
    });
    expect(out).to.contain('shared').and.contain('hi-env');

    const p = await call('POST', `/api/v1/sandboxes/${sb.body.id}/pause`, { token: owner.token });
    expect(p.body.state).to.equal('paused');
    expect(await dockerState(sb.body.container_id)).to.equal('paused');
    expect(await statusOf(s1.body.id)).to.equal('paused');
    expect((await call('POST', `/api/v1/sandboxes/${sb.body.id}/pause`, { token: owner.token })).status).to.equal(409);
    const rs = await call('POST', `/api/v1/sandboxes/${sb.body.id}/resume`, { token: owner.token });
    expect(rs.body.state).to.equal('active');
    expect(await dockerState(sb.body.container_id)).to.equal('running');
    await waitFor('s1 back to idle', async () => (await statusOf(s1.body.id)) === 'idle');
    const del = await call('DELETE', `/api/v1/sandboxes/${sb.body.id}`, { token: owner.token });
    expect(del.body.state).to.equal('stopped');
    expect(await dockerState(sb.body.container_id)).to.equal(null);
    expect(await statusOf(s1.body.id)).to.equal('stopped');
    expect(await statusOf(s2.body.id)).to.equal('stopped');

    // A sandbox whose (allowed) image does not exist: 422 with the reason, and nothing is left of it.
    const sandboxesBefore = await db('sandboxes').where({ project_id: projectId }).count<{ count: string }[]>('* as count');
    const bad = await call('POST', '/api/v1/sandboxes', { token: owner.token, body: { agent: writer.handle, project_id: projectId, image: 'troupe-sandbox-minimal:no-such-tag' } });
    expect(bad.status).to.equal(422);
    expect(bad.body.error).to.contain('Could not start the sandbox');
    const sandboxesAfter = await db('sandboxes').where({ project_id: projectId }).count<{ count: string }[]>('* as count');
    expect(sandboxesAfter[0].count).to.equal(sandboxesBefore[0].count);
  });

  it('seed 001: PATCH pauses, resumes, merges data and ends; DELETE removes the session', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const r = await call('POST', '/api/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, data: { workdir: '/workspace' } } });
    expect(r.body.status).to.equal('active'); // no prompt: nothing queued, the session waits
    const paused = await call('PATCH', `/api/sessions/${r.body.id}`, { token: owner.token, body: { status: 'paused', data: { notes: 'Paused for review' } } });
    expect(paused.body.status).to.equal('paused');
    expect(paused.body.data).to.deep.equal({ workdir: '/workspace', notes: 'Paused for review' });
    const filtered = await call('GET', `/api/sessions?status=paused&agent_id=${agent.handle}`, { token: owner.token });
    expect(filtered.body.sessions.map((s: any) => s.id)).to.deep.equal([r.body.id]);
    const active = await call('PATCH', `/api/sessions/${r.body.id}`, { token: owner.token, body: { status: 'active' } });
    expect(['created', 'active']).to.include(active.body.status);
    await waitFor('idle', async () => (await statusOf(r.body.id)) === 'idle');
    const done = await call('PATCH', `/api/sessions/${r.body.id}`, { token: owner.token, body: { status: 'completed' } });
    expect(done.body.status).to.equal('completed');
    expect((await call('PATCH', `/api/sessions/${r.body.id}`, { token: owner.token, body: { status: 'paused' } })).status).to.equal(409);
    const del = await call('DELETE', `/api/sessions/${r.body.id}`, { token: owner.token });
    expect(del.status).to.equal(200);
    expect(await db('sessions').where({ id: r.body.id }).first()).to.equal(undefined);
    expect((await call('GET', `/api/sessions/${r.body.id}`, { token: owner.token })).status).to.equal(404);
  });

  it('housekeeping: idle sessions auto-pause; containers of terminal or unknown sandboxes are reaped', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'hello' }] } });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'hi' } });
    await waitFor('idle', async () => (await statusOf(r.body.id)) === 'idle');
    const cid = await waitFor('container', async () => (await db('sandboxes').where({ id: r.body.sandbox_id }).first()).container_id);
    // An orphan: a labelled container whose sandbox row does not exist.
    const { sandboxDriver } = await import('../src/runtime/sandbox/index.js');
    const orphan = await sandboxDriver().ensure({ sandboxId: crypto.randomUUID(), projectId, image: 'troupe-sandbox-minimal:latest' });
    const { startReaper } = await import('../src/runtime/reaper.js');
    await db('sessions').where({ id: r.body.id }).update({ last_active_at: db.raw("now() - interval '5 seconds'") });
    const reaper = startReaper(log);
    reaper.stop();
    await reaper.sweep({ idleTimeoutSeconds: 1 });
    expect(await statusOf(r.body.id)).to.equal('paused');
    expect(await dockerState(cid)).to.equal('paused');
    expect(await dockerState(orphan.id)).to.equal(null);
    const reason = (await eventsOf(r.body.id)).filter((e) => e.event_type === 'status').at(-1).payload.reason;
    expect(reason).to.match(/idle for 1s/);
  });
});
