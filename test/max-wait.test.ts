/**
 * A blocking send-message is bounded (issue 12, finding 9): POST /api/v1/sessions/:sid/messages
 * waits at most TROUPE_MAX_WAIT_SECONDS (here 2, on a separate api process started with it), then
 * answers 202 with where to follow the reply; the session carries on, and the stream URL given
 * delivers the rest.
 */
import { expect } from 'chai';
import { call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { request } from './support/http.js';
import { openStream } from './support/clients.js';

describe('blocking send-message is bounded (issue 12, finding 9)', function () {
  this.timeout(90_000);
  let api: Proc | undefined;
  let base = '';
  before(async () => {
    await sessionWorker(); // runs the sessions the separate api queues (same database and Redis prefix)
    const port = await freePort();
    api = await startApi({ PORT: String(port), HOST: '127.0.0.1', TROUPE_MAX_WAIT_SECONDS: '2', TROUPE_PUBLIC_URL: `http://127.0.0.1:${port}` });
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => api?.stop());

  it('a reply that takes longer than the maximum: 202 after ~2 s (even with ?timeout=3600), with stream and events URLs that then show the reply', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'working', tool_calls: [{ name: 'bash', input: { command: 'sleep 6' } }] }, { text: 'the late reply' }] },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    expect(s.status).to.equal(201);
    const t0 = Date.now();
    const r = await request(base, 'POST', `/api/v1/sessions/${s.body.id}/messages?timeout=3600`, {
      token: owner.token, body: { role: 'user', content: [{ type: 'text', text: 'take your time' }] },
    });
    const took = Date.now() - t0;
    expect(r.status, r.text).to.equal(202);
    expect(took).to.be.within(1900, 6000);
    expect(r.body).to.include({ session_id: s.body.id });
    expect(r.body.status).to.be.oneOf(['queued', 'running']);
    expect(r.body.stream_url).to.equal(`/api/v1/sessions/${s.body.id}/stream?last_event_id=${r.body.event_index}`);
    expect(r.body.events_url).to.match(new RegExp(`^/api/v1/projects/${projectId}/conversations/${s.body.id}/events\\?offset=${r.body.event_index + 1}$`));

    // Following the stream URL gives the reply once it comes.
    const stream = openStream(base + r.body.stream_url, owner.token);
    try {
      await waitFor('the late reply on the stream', async () => stream.frames.some((f) => f.event === 'text_complete' && f.data.text === 'the late reply'), { timeoutMs: 40_000 });
    } finally {
      stream.close();
    }
    const events = await request(base, 'GET', r.body.events_url, { token: owner.token });
    expect(events.status).to.equal(200);
    expect(events.body.events[0].event_index).to.equal(r.body.event_index + 1);
    expect(events.body.events.map((e: any) => e.payload?.message)).to.include('the late reply');
  });

  it('a reply within the maximum (the default 120 s, on the suite\'s api) is still answered in the same request', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'quick' }] } });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    const r = await call('POST', `/api/v1/sessions/${s.body.id}/messages`, {
      token: owner.token, body: { role: 'user', content: [{ type: 'text', text: 'hi' }] },
    });
    expect(r.status, r.text).to.equal(200);
    expect(r.body.role).to.equal('assistant');
    expect(r.body.content[0].text).to.equal('quick');
  });
});
