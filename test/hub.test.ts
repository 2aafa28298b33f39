import { expect } from 'chai';
import crypto from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';
import { apiServer, call, newProject, newAgent, sessionWorker, waitFor } from './support/harness.js';
import { connectDashboard, subscribe } from './support/clients.js';
import { signUserToken } from '../src/http/auth.js';
import { db } from '../src/db/knex.js';
import { webhookQueue } from '../src/runtime/webhooks.js';

interface AgentHandle {
  id: string;
  key: string;
  name: string;
  projectId: string;
  ownerToken: string;
}

async function agentWithKey(body: Record<string, unknown> = {}): Promise<AgentHandle> {
  const { owner, projectId } = await newProject();
  const a = await newAgent(projectId, owner.token, { kind: 'external', ...body });
  const k = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/api-keys`, { token: owner.token, body: {} });
  return { id: a.id, key: k.body.key, name: a.name, projectId, ownerToken: owner.token };
}

async function openWs(key: string) {
  const { url } = await apiServer();
  const frames: any[] = [];
  const ws = new WebSocket(url.replace('http', 'ws') + '/ws', { headers: { authorization: `Bearer ${key}` } });
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor('connected frame', async () => frames.length > 0);
  return { ws, frames };
}

async function connect(a: AgentHandle, b: AgentHandle, approval?: string) {
  const code = await call('POST', '/api/v1/pairing-codes', { token: a.key, body: {} });
  expect(code.status).to.equal(201);
  expect(code.body.code).to.match(/^[A-Z2-9]{8}$/);
  const conn = await call('POST', '/api/v1/connections', { token: b.key, body: { pairingCode: code.body.code, ...(approval ? { approval } : {}) } });
  expect(conn.status).to.equal(201);
  return conn.body;
}

const ofType = (frames: any[], type: string) => frames.filter((f) => f.type === type);

describe('agent hub: connections, tasks, /ws, updates, webhooks', function () {
  this.timeout(60_000);
  before(() => sessionWorker());

  it('two external agents: pair, task with approval, messages, completion — over /ws, updates and the debug stream', async () => {
    const a = await agentWithKey();
    const b = await agentWithKey({ approval: 'require', public_key: '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----' });
    const wa = await openWs(a.key);
    const wb = await openWs(b.key);
    expect(wa.frames[0]).to.deep.equal({ type: 'connected', agentId: a.id });

    const { url } = await apiServer();
    const admin = await signUserToken('test-admin');
    const debugFrames: string[] = [];
    const ac = new AbortController();
    const debug = await fetch(`${url}/debug/events`, { headers: { authorization: `Bearer ${admin}` }, signal: ac.signal });
    expect(debug.status).to.equal(200);
    void (async () => {
      const reader = debug.body!.getReader();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) break;
        debugFrames.push(new TextDecoder().decode(value));
      }
    })();

    const conn = await connect(a, b);
    expect(conn).to.include({ agentId: b.id, withAgentId: a.id });
    await waitFor('agent.connected to both', async () => ofType(wa.frames, 'agent.connected').length && ofType(wb.frames, 'agent.connected').length);
    expect(ofType(wa.frames, 'agent.connected')[0]).to.include({ connectionId: conn.id, withAgentId: b.id, withAgentName: b.name });
    expect(ofType(wa.frames, 'agent.connected')[0].withPublicKey).to.contain('BEGIN PUBLIC KEY');
    expect(ofType(wb.frames, 'agent.connected')[0]).to.not.have.property('withPublicKey');

    const task = await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: b.id, title: 'Write the docs', message: 'Please write them' } });
    expect(task.status).to.equal(201);
    expect(task.body).to.include({ fromAgentId: a.id, toAgentId: b.id, title: 'Write the docs', status: 'submitted' });
    await waitFor('approval_required', async () => ofType(wb.frames, 'task.approval_required').length);
    expect(ofType(wb.frames, 'task.approval_required')[0]).to.include({ taskId: task.body.id, fromAgentId: a.id });
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/status`, { token: b.key, body: { status: 'working' } })).status).to.equal(409);
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/approve`, { token: a.key, body: {} })).status).to.equal(403);
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/approve`, { token: b.key, body: {} })).status).to.equal(200);
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/status`, { token: b.key, body: { status: 'working' } })).body.status).to.equal('working');
    await waitFor('task.updated working', async () => ofType(wa.frames, 'task.updated').some((f) => f.status === 'working'));

    const m = await call('POST', `/api/v1/tasks/${task.body.id}/messages`, { token: b.key, body: { content: 'Which format?' } });
    expect(m.status).to.equal(201);
    await waitFor('message.created', async () => ofType(wa.frames, 'message.created').length);
    expect(ofType(wa.frames, 'message.created')[0]).to.include({ taskId: task.body.id, messageId: m.body.id, fromAgentId: b.id });
    await call('POST', `/api/v1/tasks/${task.body.id}/messages`, { token: a.key, body: { content: 'Markdown' } });
    const msgs = await call('GET', `/api/v1/tasks/${task.body.id}/messages`, { token: b.key });
    expect(msgs.body.map((x: any) => x.content)).to.deep.equal(['Please write them', 'Which format?', 'Markdown']);
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/status`, { token: b.key, body: { status: 'completed' } })).body.status).to.equal('completed');
    await waitFor('completed', async () => ofType(wa.frames, 'task.updated').some((f) => f.status === 'completed'));
    expect((await call('POST', `/api/v1/tasks/${task.body.id}/status`, { token: b.key, body: { status: 'working' } })).status).to.equal(409);

    // updates: a client that missed everything recovers it, in order, from a cursor
    const all = await call('GET', '/api/v1/updates', { token: a.key });
    expect(all.body.events.map((e: any) => e.type)).to.deep.equal(wa.frames.slice(1).map((f) => f.type));
    const mid = all.body.events[1].cursor;
    const after = await call('GET', `/api/v1/updates?after=${mid}&limit=2`, { token: a.key });
    expect(after.body.events.map((e: any) => e.cursor)).to.deep.equal(all.body.events.slice(2, 4).map((e: any) => e.cursor));
    expect(after.body.has_more).to.equal(all.body.events.length > 4);

    await waitFor('debug stream saw the task', async () => debugFrames.join('').includes('event: task.updated'));
    ac.abort();
    const foreign = await agentWithKey();
    expect((await call('GET', `/api/v1/tasks/${task.body.id}`, { token: foreign.key })).status).to.equal(404);
    expect((await call('GET', '/debug/events', { token: a.ownerToken })).status).to.equal(403);
    wa.ws.close();
    wb.ws.close();
  });

  it('deleting a connection tells the other agent and cancels open tasks between them', async () => {
    const a = await agentWithKey();
    const b = await agentWithKey();
    const wa = await openWs(a.key);
    const conn = await connect(a, b);
    const t = await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: b.id, title: 't', message: 'm' } });
    const d = await call('DELETE', `/api/v1/connections/${conn.id}`, { token: b.key });
    expect(d.body.cancelledTasks).to.equal(1);
    await waitFor('disconnected', async () => ofType(wa.frames, 'agent.disconnected').length);
    expect(ofType(wa.frames, 'agent.disconnected')[0]).to.deep.include({ connectionId: conn.id, byAgentId: b.id });
    expect((await call('GET', `/api/v1/tasks/${t.body.id}`, { token: a.key })).body.status).to.equal('cancelled');
    expect((await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: b.id, title: 't', message: 'm' } })).status).to.equal(404);
    wa.ws.close();
  });

  it('pairing codes are single-use and expire; bad keys are refused at the /ws upgrade', async () => {
    const a = await agentWithKey();
    const b = await agentWithKey();
    const c = await agentWithKey();
    const code = await call('POST', '/api/v1/pairing-codes', { token: a.key, body: {} });
    // Own, used, expired and unknown codes get one status and one text (issue 12, finding 9): a
    // guesser learns nothing about which codes exist.
    const own = await call('POST', '/api/v1/connections', { token: a.key, body: { pairingCode: code.body.code } });
    expect((await call('POST', '/api/v1/connections', { token: b.key, body: { pairingCode: code.body.code } })).status).to.equal(201);
    const used = await call('POST', '/api/v1/connections', { token: c.key, body: { pairingCode: code.body.code } });
    const old = await call('POST', '/api/v1/pairing-codes', { token: a.key, body: {} });
    await db('pairing_codes').where({ code: old.body.code }).update({ expires_at: db.raw("now() - interval '1 second'") });
    const expired = await call('POST', '/api/v1/connections', { token: c.key, body: { pairingCode: old.body.code } });
    const unknown = await call('POST', '/api/v1/connections', { token: c.key, body: { pairingCode: 'NOPE1234' } });
    for (const r of [own, used, expired, unknown]) {
      expect(r.status).to.equal(400);
      expect(r.body).to.deep.equal(unknown.body);
    }
    expect(unknown.body.error).to.match(/cannot be used/);
    expect((await call('POST', '/api/v1/connections', { token: c.key, body: {} })).status).to.equal(400);
    expect((await call('POST', '/api/v1/tasks', { token: c.key, body: { toAgentId: a.id, title: 'x', message: 'y' } })).status).to.equal(404);
    const { url } = await apiServer();
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url.replace('http', 'ws') + '/ws', { headers: { authorization: 'Bearer trp_bogus' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    expect(status).to.equal(401);
    // a user acting for an agent of its project, by naming it
    const asUser = await call('GET', `/api/v1/connections?asAgentId=${a.id}`, { token: a.ownerToken });
    expect(asUser.status).to.equal(200);
    expect(asUser.body.map((x: any) => x.withAgentId)).to.include(b.id);
    expect((await call('GET', `/api/v1/connections?asAgentId=${b.id}`, { token: a.ownerToken })).status).to.equal(404);
    expect((await call('GET', '/api/v1/connections', { token: a.ownerToken })).status).to.equal(400);
    // ... or by its handle (unique in the user's projects); another project's handle is not found
    const handleOf = async (x: AgentHandle) => (await db('agents').where({ id: x.id }).first()).handle as string;
    const byHandle = await call('GET', `/api/v1/connections?asAgentId=${await handleOf(a)}`, { token: a.ownerToken });
    expect(byHandle.status).to.equal(200);
    expect(byHandle.body).to.deep.equal(asUser.body);
    expect((await call('GET', `/api/v1/connections?asAgentId=no-such-handle`, { token: a.ownerToken })).status).to.equal(404);
    // A task for a connected agent, named by handle; a handle it is not connected to is not found.
    const t = await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: await handleOf(b), title: 'by handle', message: 'hi' } });
    expect(t.status).to.equal(201);
    expect(t.body.toAgentId).to.equal(b.id);
    expect((await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: await handleOf(c), title: 'x', message: 'y' } })).status).to.equal(404);
  });

  it('a hosted agent works a task in a session; the initiator sees every status change', async () => {
    const a = await agentWithKey();
    const { owner, projectId } = await newProject();
    const hosted = await newAgent(projectId, owner.token, {
      script: {
        turns: [
          { text: 'On it.', tool_calls: [{ name: 'task_reply', input: { message: 'Starting now' } }, { name: 'bash', input: { command: 'echo done > /workspace/result.txt' } }] },
          { text: 'All done.', tool_calls: [{ name: 'finish', input: { summary: 'result.txt written' } }] },
        ],
      },
    });
    const k = await call('POST', `/api/v1/projects/${projectId}/agents/${hosted.id}/api-keys`, { token: owner.token, body: {} });
    const dash = await connectDashboard((await apiServer()).url, owner.token);
    expect(await subscribe(dash.socket, { project_id: projectId })).to.deep.equal({ ok: true });
    const wa = await openWs(a.key);
    await connect(a, { id: hosted.id, key: k.body.key, name: hosted.name, projectId, ownerToken: owner.token });
    const t = await call('POST', '/api/v1/tasks', { token: a.key, body: { toAgentId: hosted.id, title: 'Produce result', message: 'Write result.txt' } });
    await waitFor('completed', async () => ofType(wa.frames, 'task.updated').some((f) => f.status === 'completed'), 30_000);
    expect(ofType(wa.frames, 'task.updated').map((f) => f.status)).to.deep.equal(['working', 'completed']);
    const texts = (await call('GET', `/api/v1/tasks/${t.body.id}/messages`, { token: a.key })).body.map((m: any) => m.content);
    expect(texts).to.deep.equal(['Write result.txt', 'Starting now', 'result.txt written']);
    expect(ofType(wa.frames, 'message.created')).to.have.length(2);
    const task = await call('GET', `/api/v1/tasks/${t.body.id}`, { token: a.key });
    const conv = await call('GET', `/api/v1/projects/${projectId}/conversations/${task.body.sessionId}`, { token: owner.token });
    expect(conv.body).to.include({ trigger_type: 'task_assigned', task_id: t.body.id, task_title: 'Produce result', status: 'completed' });
    await waitFor('dashboard saw it start', async () => dash.received.some(([n, d]) => n === 'agent:conversation:started' && d.trigger_type === 'task_assigned'));
    dash.socket.close();
    wa.ws.close();
  });

  it('webhooks: signed, retried with backoff until the receiver succeeds, every attempt listed', async () => {
    let hits = 0;
    const bodies: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits++;
        bodies.push({ headers: req.headers, body });
        res.statusCode = hits <= 2 ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const a = await agentWithKey();
      const b = await agentWithKey({ webhook_url: `http://127.0.0.1:${port}/hook` });
      const secret = await call('POST', `/api/v1/projects/${b.projectId}/agents/${b.id}/webhook-secret`, { token: b.ownerToken, body: {} });
      expect(secret.body.secret).to.match(/^whsec_/);
      const got = await call('GET', `/api/v1/projects/${b.projectId}/agents/${b.id}`, { token: b.ownerToken });
      expect(got.body.has_webhook_secret).to.equal(true);
      expect(JSON.stringify(got.body)).to.not.contain(secret.body.secret);
      await connect(a, b);
      await waitFor('three attempts', async () => hits >= 3, 15_000);
      // The third attempt succeeded: once its job is completed, no further attempt can come.
      const ev = await db('agent_events').where({ agent_id: b.id, type: 'agent.connected' }).first('id');
      await waitFor('the delivery job to complete', async () => (await webhookQueue().getJobState(`evt-${ev.id}`)) === 'completed', 5000);
      expect(hits).to.equal(3);
      // The documented verification snippet (README, Webhooks):
      for (const { headers, body } of bodies) {
        const expected = 'sha256=' + crypto.createHmac('sha256', secret.body.secret).update(`${headers['x-troupe-timestamp']}.${body}`).digest('hex');
        expect(crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(String(headers['x-troupe-signature'])))).to.equal(true);
        expect(JSON.parse(body)).to.include({ type: 'agent.connected', withAgentId: a.id });
      }
      const deliveries = await call('GET', `/api/v1/projects/${b.projectId}/agents/${b.id}/webhook-deliveries`, { token: b.ownerToken });
      expect(deliveries.body.deliveries.map((d: any) => [d.attempt, d.status_code, d.succeeded])).to.deep.equal([[3, 200, true], [2, 500, false], [1, 500, false]]);
    } finally {
      server.close();
    }
  });
});
