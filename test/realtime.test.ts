import { expect } from 'chai';
import { apiServer, call, newProject, newAgent, sessionWorker, waitFor, newUser } from './support/harness.js';
import { openStream, connectDashboard, subscribe } from './support/clients.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { db } from '../src/db/knex.js';

const durableLog = async (id: string) => (await db('session_events').where({ session_id: id }).orderBy('event_index')).map((e) => e.event_index);

describe('realtime delivery', function () {
  this.timeout(60_000);
  let second: Proc | undefined;
  let secondUrl = '';
  before(async () => {
    await sessionWorker();
    const port = await freePort();
    // A second api process on the same database and Redis prefix as the in-process one.
    second = await startApi({ PORT: String(port), TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX!, DATABASE_URL: process.env.DATABASE_URL! });
    secondUrl = `http://127.0.0.1:${port}`;
  });
  after(() => second?.child.kill('SIGKILL'));

  const sentence = 'The quick brown fox jumps over the lazy dog and keeps on running far away';
  const script = (delay: number) => ({
    token_delay_ms: delay,
    turns: [
      { text: sentence, tool_calls: [{ name: 'bash', input: { command: 'for i in 1 2 3; do echo line-$i; sleep 0.1; done' } }] },
      { text: 'Finished now.', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] },
    ],
  });

  it('SSE: deltas and tool events in order, ends on completion; deltas concatenate to the message', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: script(5) });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    const { url } = await apiServer();
    const stream = openStream(`${url}/api/v1/sessions/${s.body.id}/stream`, owner.token);
    await waitFor('stream open', async () => stream.frames.length > 0);
    const sentAt = Date.now();
    await call('POST', `/api/sessions/${s.body.id}/message`, { token: owner.token, body: { content: 'go' } });
    await stream.ended;
    const names = stream.frames.map((f) => f.event);
    const deltas = stream.frames.filter((f) => f.event === 'text_delta' && f.data.turn === 0).map((f) => f.data.delta).join('');
    expect(deltas).to.equal(sentence);
    // Every live frame says when the worker published it, between our request and now, in order.
    const live = stream.frames.filter((f) => ['text_delta', 'tool_use_start', 'tool_output_delta'].includes(f.event)).map((f) => f.data.at as number);
    expect(live.length).to.be.greaterThan(3);
    for (const [i, at] of live.entries()) {
      expect(at).to.be.a('number').within(sentAt - 5, Date.now());
      if (i > 0) expect(at).to.be.at.least(live[i - 1]);
    }
    const complete = stream.frames.find((f) => f.event === 'text_complete')!;
    expect(complete.data.text).to.equal(sentence);
    expect(names.indexOf('text_delta')).to.be.lessThan(names.indexOf('text_complete'));
    // tool_use_start is live (as the model emits the call); the turn's message and calls become durable together after it
    const seq = ['tool_use_start', 'text_complete', 'tool_use_complete', 'tool_output_delta', 'tool_result', 'session_completed'];
    let at = -1;
    for (const n of seq) {
      const i = names.indexOf(n, at + 1);
      expect(i, `${n} after ${seq[seq.indexOf(n) - 1]} in ${names.join(',')}`).to.be.greaterThan(at);
      at = i;
    }
    const output = stream.frames.filter((f) => f.event === 'tool_output_delta').map((f) => f.data.chunk).join('');
    expect(output).to.equal('line-1\nline-2\nline-3\n');
    const ids = stream.frames.filter((f) => f.id !== null).map((f) => Number(f.id));
    expect(ids).to.deep.equal(await durableLog(s.body.id));
    // Resuming at or past the end of the finished session (an EventSource reconnecting after the
    // stream ended): 204, which tells it to stop reconnecting, not a stream left open.
    for (const last of [String(ids.at(-1)), '999']) {
      const res = await fetch(`${url}/api/v1/sessions/${s.body.id}/stream`, { headers: { authorization: `Bearer ${owner.token}`, 'last-event-id': last }, signal: AbortSignal.timeout(5000) });
      expect(res.status, last).to.equal(204);
    }
    // One event short: the rest of the log, the terminal frame, and the end.
    const tail = openStream(`${url}/api/v1/sessions/${s.body.id}/stream`, owner.token, String(ids.at(-2)));
    await tail.ended;
    expect(tail.frames.map((f) => f.event)).to.deep.equal(['status', 'session_completed']);
  });

  for (const where of ['the same api process', 'a second api process']) {
    it(`SSE: reconnecting with Last-Event-ID on ${where} gets exactly the missed events`, async () => {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, { script: script(20) });
      const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
      const { url } = await apiServer();
      const first = openStream(`${url}/api/v1/sessions/${s.body.id}/stream`, owner.token);
      await waitFor('a few durable events', async () => first.frames.filter((f) => f.id !== null).length >= 3);
      first.close();
      const got1 = first.frames.filter((f) => f.id !== null).map((f) => Number(f.id));
      const base = where === 'the same api process' ? url : secondUrl;
      const second = openStream(`${base}/api/v1/sessions/${s.body.id}/stream`, owner.token, String(got1.at(-1)));
      await second.ended;
      const got2 = second.frames.filter((f) => f.id !== null).map((f) => Number(f.id));
      const log = await durableLog(s.body.id);
      expect([...got1, ...got2]).to.deep.equal(log);
      expect(second.frames.at(-1)!.event).to.equal('session_completed');
    });
  }

  it('SSE: a client joining mid-message sees the deltas so far (buffered in Redis)', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: { token_delay_ms: 60, turns: [{ text: sentence }] } });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    await waitFor('streaming under way', async () => (await db('sessions').where({ id: s.body.id }).first()).status === 'running');
    const { url } = await apiServer();
    // Join once the message is under way: an early client has seen its first deltas.
    const early = openStream(`${url}/api/v1/sessions/${s.body.id}/stream`, owner.token);
    await waitFor('the first deltas', async () => early.frames.filter((f) => f.event === 'text_delta').length >= 2);
    early.close();
    const late = openStream(`${url}/api/v1/sessions/${s.body.id}/stream`, owner.token);
    await waitFor('complete', async () => late.frames.some((f) => f.event === 'text_complete'));
    late.close();
    const firstComplete = late.frames.findIndex((f) => f.event === 'text_complete');
    const deltas = late.frames.slice(0, firstComplete).filter((f) => f.event === 'text_delta').map((f) => f.data.delta).join('');
    expect(deltas).to.equal(sentence);
  });

  it("SSE: auth and another project's session", async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    const other = await newUser();
    expect((await call('GET', `/api/v1/sessions/${s.body.id}/stream`, { token: other.token })).status).to.equal(404);
    expect((await call('GET', `/api/v1/sessions/${s.body.id}/stream`)).status).to.equal(401);
    expect((await call('GET', `/api/v1/sessions/${s.body.id}/stream`, { token: owner.token, headers: { 'last-event-id': 'abc' } })).status).to.equal(400);
    const { url } = await apiServer();
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/sessions/${s.body.id}/stream?access_token=${owner.token}`, { signal: ac.signal });
    if (res.status !== 200) console.log('BODY', await res.text(), url, s.body.id);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/text\/event-stream/);
    expect(res.headers.get('cache-control')).to.contain('no-transform');
    expect(res.headers.get('x-accel-buffering')).to.equal('no');
    expect(res.headers.get('content-encoding')).to.equal(null);
    ac.abort();
  });

  it('Socket.IO: members get project events across api processes; non-members are refused', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: script(0) });
    const { url } = await apiServer();
    const dash = await connectDashboard(url, owner.token);
    const convWatcher = await connectDashboard(secondUrl, owner.token);
    try {
      expect(await subscribe(dash.socket, { project_id: projectId })).to.deep.equal({ ok: true });
      const stranger = await newUser();
      const intruder = await connectDashboard(url, stranger.token);
      expect(await subscribe(intruder.socket, { project_id: projectId })).to.have.property('error');
      expect(await subscribe(intruder.socket, { bogus: 1 })).to.have.property('error');
      intruder.socket.close();
      // created through the second api process; the dashboard is on the first
      const created = await fetch(`${secondUrl}/api/v1/sessions`, {
        method: 'POST', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agent_id: agent.id, project_id: projectId }),
      }).then((r) => r.json() as Promise<any>);
      expect(await subscribe(convWatcher.socket, { conversation_id: created.id })).to.deep.equal({ ok: true });
      await call('POST', `/api/v1/projects/${projectId}/conversations/${created.id}/message`, { token: owner.token, body: { message: 'go' } });
      await waitFor('completed status', async () => dash.received.some(([n, d]) => n === 'agent:conversation:status' && d.status === 'completed'));
      const started = dash.received.find(([n]) => n === 'agent:conversation:started')!;
      expect(started[1]).to.deep.equal({ conversation_id: created.id, agent_id: agent.id, trigger_type: 'api' });
      const events = dash.received.filter(([n]) => n === 'agent:conversation:event').map(([, d]) => d.event_index);
      expect(events).to.deep.equal(await durableLog(created.id));
      expect(dash.received.some(([n]) => n === 'agent:conversation:delta')).to.equal(false);
      await waitFor('watcher deltas', async () => convWatcher.received.some(([n, d]) => n === 'agent:conversation:status' && d.status === 'completed'));
      const deltas = convWatcher.received.filter(([n, d]) => n === 'agent:conversation:delta' && d.type === 'text_delta' && d.turn === 0).map(([, d]) => d.delta).join('');
      expect(deltas).to.equal(sentence);
    } finally {
      dash.socket.close();
      convWatcher.socket.close();
    }
  });

  it('Socket.IO: a bad token is refused at the handshake', async () => {
    const { url } = await apiServer();
    let err: Error | undefined;
    try {
      await connectDashboard(url, 'not-a-token');
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/token/i);
  });
});
