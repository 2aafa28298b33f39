/**
 * The client package (@troupe/client) against the real server: resources round-trip through all
 * route families, the session stream resumes across an api restart with no gap and no duplicate,
 * send() resolves with the reply, Socket.IO and agent WebSocket channels (with recovery through
 * /api/v1/updates), typed errors, idempotent retries after a real dropped connection, and the
 * webhook verification helper on a real delivery.
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { apiServer, newProject, newAgent, newUser, sessionWorker, uniq, waitFor } from './support/harness.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { db } from '../src/db/knex.js';
import {
  TroupeClient, TroupeError, TroupeConnectionError, verifyWebhook, isValidWebhook, WebhookVerificationError,
  type HubEvent, type StreamEvent, type ProjectEvent,
} from '../packages/client/src/index.js';

const TEST_IMAGE = 'troupe-sandbox-minimal:latest';

async function clientFor(token: string, baseUrl?: string): Promise<TroupeClient> {
  return new TroupeClient({ baseUrl: baseUrl ?? (await apiServer()).url, token, retryDelayMs: 50 });
}

/** A user with a project and a client; agents are scripted on the minimal image. */
async function fixture() {
  const { owner, projectId } = await newProject();
  const troupe = await clientFor(owner.token);
  const agent = (body: Record<string, unknown> = {}) =>
    troupe.agents.create(projectId, { name: uniq('agent'), llm_provider: 'scripted', sandbox: { image: TEST_IMAGE }, ...body } as never);
  return { owner, projectId, troupe, agent };
}

/** Two external agents of two users, each with an API key, connected through a pairing code. */
async function connectedAgents(opts: { webhookUrl?: string } = {}) {
  const a = await fixture();
  const b = await fixture();
  const agentA = await a.agent({ kind: 'external' });
  const agentB = await b.agent({ kind: 'external', ...(opts.webhookUrl ? { webhook_url: opts.webhookUrl } : {}) });
  const keyA = await a.troupe.agents.apiKeys.create(a.projectId, agentA.id, { name: 'sdk' });
  const keyB = await b.troupe.agents.apiKeys.create(b.projectId, agentB.id, {});
  return { a, b, agentA, agentB, keyA: keyA.key, keyB: keyB.key };
}

async function pair(keyA: string, keyB: string) {
  const asA = await clientFor(keyA);
  const asB = await clientFor(keyB);
  const code = await asA.hub.createPairingCode();
  const conn = await asB.hub.connect({ pairingCode: code.code });
  return { asA, asB, conn };
}

/**
 * A loopback TCP proxy in front of the api, to break connections for real: `dropNext(re)` lets the
 * next request whose request line matches reach the api, then drops its connection as soon as the
 * api answers (the work is done, the client never hears of it); `destroyAll()` cuts every open
 * connection (e.g. a stream) at once. `seen` lists request lines with their Idempotency-Key.
 */
async function proxyTo(target: string) {
  const upstream = new URL(target);
  let dropRule: RegExp | null = null;
  const state = { dropped: 0, seen: [] as string[] };
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const api = net.connect(Number(upstream.port), upstream.hostname);
    open.add(client);
    let drop = false;
    client.on('data', (chunk) => {
      const head = chunk.toString('latin1');
      const line = head.split('\r\n')[0];
      if (/^[A-Z]+ \//.test(line)) {
        state.seen.push(`${line} ${/idempotency-key: (\S+)/i.exec(head)?.[1] ?? '-'}`);
        if (dropRule?.test(line)) {
          drop = true;
          dropRule = null;
        }
      }
      api.write(chunk);
    });
    api.on('data', (chunk) => {
      if (drop) {
        state.dropped++;
        client.destroy();
        api.destroy();
      } else client.write(chunk);
    });
    client.on('error', () => api.destroy());
    api.on('error', () => client.destroy());
    client.on('close', () => {
      open.delete(client);
      api.destroy();
    });
    api.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    state,
    dropNext: (re: RegExp) => (dropRule = re),
    destroyAll: () => {
      for (const c of open) c.destroy();
    },
    close: () => {
      for (const c of open) c.destroy();
      server.close();
    },
  };
}

describe('client package (@troupe/client)', function () {
  this.timeout(90_000);
  before(() => sessionWorker());

  it('resources round-trip: projects, agents and their keys, MCP servers and skills, sessions in three views, sandboxes, chats, pairs', async () => {
    const { projectId, troupe, agent } = await fixture();
    const p = await troupe.projects.get(projectId);
    expect(p).to.include({ id: projectId, role: 'owner' });
    expect((await troupe.projects.list()).map((x) => x.id)).to.include(projectId);
    expect((await troupe.projects.members(projectId)).length).to.be.greaterThan(0);

    const a = await agent({ handle: uniq('bot'), script: { turns: [{ text: 'Hello.' }] } });
    expect((await troupe.agents.list(projectId)).map((x) => x.id)).to.deep.equal([a.id]);
    const renamed = await troupe.agents.update(projectId, a.handle, { name: 'Renamed' });
    expect(renamed.name).to.equal('Renamed');
    const key = await troupe.agents.apiKeys.create(projectId, a.id, { name: 'ci' });
    expect(key.key).to.match(/^trp_/);
    expect((await troupe.agents.apiKeys.list(projectId, a.id)).map((k) => k.id)).to.deep.equal([key.id]);
    const mcp = await troupe.agents.mcpServers.create(projectId, a.id, { server_name: 'fetch', transport: 'stdio', command: 'uvx', args: ['mcp-server-fetch'], env: { TOKEN: 'secret-value' } });
    expect(mcp.env_keys).to.deep.equal(['TOKEN']);
    expect(JSON.stringify(mcp)).to.not.contain('secret-value');
    await troupe.agents.mcpServers.update(projectId, a.id, mcp.id, { is_enabled: false });
    const skill = await troupe.agents.skills.create(projectId, a.id, { skill_name: 'guide', skill_source: 'inline', skill_content: '---\nname: guide\ndescription: rules\n---\n# Rules', triggers: ['review'] });
    const shown = await troupe.agents.get(projectId, a.handle);
    expect(shown.mcp_servers!.map((m) => [m.server_name, m.is_enabled])).to.deep.equal([['fetch', false]]);
    expect(shown.skills!.map((s) => s.id)).to.deep.equal([skill.id]);
    await troupe.agents.skills.delete(projectId, a.id, skill.id);
    await troupe.agents.mcpServers.delete(projectId, a.id, mcp.id);
    await troupe.agents.apiKeys.revoke(projectId, a.id, key.id);

    // One session, three route families' views of it.
    const s = await troupe.sessions.create({ agent_id: a.handle, project_id: projectId, metadata: { from: 'sdk' } });
    expect(s).to.include({ agent_id: a.id, project_id: projectId });
    expect(s.metadata).to.deep.equal({ from: 'sdk' });
    const conv = await troupe.sessions.conversation(projectId, s.id);
    expect(conv.id).to.equal(s.id);
    const v1 = await troupe.sessions.v001.get(s.id);
    expect(v1.id).to.equal(s.id);
    expect((await troupe.sessions.v001.list({ agent_id: a.id })).sessions.map((x) => x.id)).to.deep.equal([s.id]);
    expect((await troupe.agents.conversations(projectId, a.id)).conversations.map((c) => c.id)).to.deep.equal([s.id]);
    await troupe.sessions.message(projectId, s.id, 'hi');
    await waitFor('the reply', async () => (await troupe.sessions.get(s.id)).messages.some((m) => m.role === 'assistant'));
    expect((await troupe.sessions.events(projectId, s.id)).total).to.be.greaterThan(2);
    expect((await troupe.sessions.stop(projectId, s.id)).status).to.equal('stopped');

    // A sandbox with a second session in it.
    const sb = await troupe.sandboxes.create({ agent: a.id, project_id: projectId });
    expect(sb.state).to.equal('active');
    expect((await troupe.sandboxes.list({ project_id: projectId })).map((x) => x.id)).to.include(sb.id);
    const inSb = await troupe.sandboxes.createSession(sb.id, {});
    expect(inSb.sandbox_id).to.equal(sb.id);
    expect((await troupe.sandboxes.sessions(sb.id)).map((x) => x.id)).to.deep.equal([inSb.id]);
    await troupe.sandboxes.delete(sb.id);
    expect((await troupe.sandboxes.get(sb.id)).state).to.equal('stopped');

    // A chat, and a pair.
    const chat = await troupe.chats.create(projectId, a.id, 'first question');
    expect(chat.conversation_id).to.equal(chat.conversation.id);
    expect(chat.conversation.trigger_type).to.equal('chat');
    expect((await troupe.chats.list(projectId, a.id)).chat_sessions.map((c) => c.id)).to.deep.equal([chat.id]);
    expect((await troupe.chats.messages(projectId, chat.id)).messages[0]).to.include({ role: 'user', content: 'first question' });
    const reviewer = await agent();
    const pairSession = await troupe.pairs.create({ generatorId: a.id, reviewerId: reviewer.id, task: 'write it', project_id: projectId });
    await troupe.pairs.turn(pairSession.id, { agentId: a.id, role: 'generate', content: 'done' });
    const ended = await troupe.pairs.end(pairSession.id, { outcome: 'completed', qualityScore: 0.5 });
    expect(ended).to.include({ status: 'completed', qualityScore: 0.5 });
    expect(ended.turns.map((t) => t.role)).to.deep.equal(['generate']);
    expect((await troupe.pairs.list({ project_id: projectId })).pairSessions.map((x) => x.id)).to.include(pairSession.id);
  });

  it('the hub: pairing codes, connections, tasks and their messages, updates', async () => {
    const { keyA, keyB, agentA, agentB } = await connectedAgents();
    const { asA, asB, conn } = await pair(keyA, keyB);
    expect(conn).to.include({ agentId: agentB.id, withAgentId: agentA.id });
    expect((await asA.hub.connections()).map((c) => c.withAgentId)).to.deep.equal([agentB.id]);
    const task = await asA.hub.tasks.create({ toAgentId: agentB.id, title: 'Review', message: 'please' });
    expect(task.status).to.equal('submitted');
    expect((await asB.hub.tasks.list({ role: 'to' })).map((t) => t.id)).to.deep.equal([task.id]);
    expect((await asB.hub.tasks.setStatus(task.id, { status: 'working' })).status).to.equal('working');
    await asB.hub.tasks.send(task.id, { content: 'on it' });
    expect((await asA.hub.tasks.messages(task.id)).map((m) => m.content)).to.include('on it');
    const updates = await asB.hub.updates();
    expect(updates.events.map((e) => e.type)).to.include.members(['agent.connected', 'task.created']);
    const after = await asB.hub.updates({ after: updates.next_cursor! });
    expect(after.events).to.deep.equal([]);
    await asA.hub.disconnect(conn.id);
    expect(await asA.hub.connections()).to.deep.equal([]);
  });

  describe('session stream', () => {
    let child: Proc | undefined;
    after(() => child?.child.kill('SIGKILL'));

    const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
    const script = (delay: number) => ({ token_delay_ms: delay, turns: [
      { text: words, tool_calls: [{ name: 'bash', input: { command: 'echo out-1; sleep 0.3; echo out-2' } }] },
      { text: 'All done.', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] },
    ] });
    const durableLog = async (id: string) => (await db('session_events').where({ session_id: id }).orderBy('event_index')).map((e) => e.event_index as number);
    const deltaKeys = (events: StreamEvent[]) =>
      events.filter((e) => e.type === 'text_delta' || e.type === 'tool_output_delta').map((e) => `${(e.data as { activation: number }).activation}:${(e.data as { seq: number }).seq}`);

    it('resumes by itself after the connection is cut mid-message: every durable event once, the message whole from its deltas, no delta twice', async () => {
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token, { script: script(60) });
      const proxy = await proxyTo((await apiServer()).url);
      try {
        const troupe = await clientFor(owner.token, proxy.url);
        const s = await troupe.sessions.create({ agent_id: a.id, project_id: projectId, message: 'go' });
        const events: StreamEvent[] = [];
        const reconnects: number[] = [];
        let cut = false;
        for await (const e of troupe.sessions.stream(s.id, { reconnectDelayMs: 50, onReconnect: (r) => reconnects.push(r.lastEventId) })) {
          events.push(e);
          if (!cut && events.filter((x) => x.type === 'text_delta').length === 5) {
            cut = true;
            proxy.destroyAll();
          }
        }
        expect(reconnects).to.have.length.greaterThan(0);
        const durable = events.flatMap((e) => ('id' in e ? [e.id] : []));
        expect(durable).to.deep.equal(await durableLog(s.id));
        const keys = deltaKeys(events);
        expect(new Set(keys).size).to.equal(keys.length);
        // The server replays the in-progress message's deltas to the reconnected stream; the
        // client skips those it had: the deltas make the message exactly, once.
        const deltas = events.filter((e) => e.type === 'text_delta' && e.data.turn === 0).map((e) => (e.data as { delta: string }).delta).join('');
        expect(deltas).to.equal(words);
        expect(events.filter((e) => e.type === 'tool_output_delta').map((e) => (e.data as { chunk: string }).chunk).join('')).to.equal('out-1\nout-2\n');
        expect(events.at(-1)!.type).to.equal('session_completed');
      } finally {
        proxy.close();
      }
    });

    it('resumes by itself across an api restart (another process on the same port); ends with the session; resumes from a given event', async () => {
      const port = await freePort();
      const env = { PORT: String(port), TROUPE_REDIS_PREFIX: process.env.TROUPE_REDIS_PREFIX!, DATABASE_URL: process.env.DATABASE_URL! };
      child = await startApi(env);
      const { owner, projectId } = await newProject();
      const a = await newAgent(projectId, owner.token, { script: script(30) });
      const troupe = await clientFor(owner.token, `http://127.0.0.1:${port}`);
      const s = await troupe.sessions.create({ agent_id: a.id, project_id: projectId, message: 'go' });
      const events: StreamEvent[] = [];
      const reconnects: number[] = [];
      let restarted = false;
      for await (const e of troupe.sessions.stream(s.id, { reconnectDelayMs: 100, maxReconnects: 40, onReconnect: (r) => reconnects.push(r.lastEventId) })) {
        events.push(e);
        if (!restarted && e.type === 'text_delta') {
          restarted = true;
          // The api dies mid-message (the worker goes on), and a new one comes up on the same port.
          await child.stop(0);
          child = await startApi(env);
        }
      }
      expect(reconnects).to.have.length.greaterThan(0);
      const log = await durableLog(s.id);
      expect(events.flatMap((e) => ('id' in e ? [e.id] : []))).to.deep.equal(log);
      const keys = deltaKeys(events);
      expect(new Set(keys).size).to.equal(keys.length);
      expect(events.find((e) => e.type === 'text_complete' && e.data.text === words)).to.not.equal(undefined);
      expect(events.at(-1)!.type).to.equal('session_completed');
      // Resuming a finished session past its end: nothing, at once.
      const rest: StreamEvent[] = [];
      for await (const e of troupe.sessions.stream(s.id, { lastEventId: log.at(-1) })) rest.push(e);
      expect(rest).to.deep.equal([]);
      // From a given event on: exactly the ones after it.
      const tail: number[] = [];
      for await (const e of troupe.sessions.stream(s.id, { lastEventId: log[2] })) if ('id' in e) tail.push(e.id);
      expect(tail).to.deep.equal(log.slice(3));
    });

    it('send() resolves with the reply message, whether the server waits for it or answers 202 first', async () => {
      const { projectId, troupe, agent } = await fixture();
      const quick = await agent({ script: { turns: [{ text: 'Quick answer.' }] } });
      const s1 = await troupe.sessions.create({ agent_id: quick.id, project_id: projectId });
      const r1 = await troupe.sessions.send(s1.id, 'hello');
      expect(r1.role).to.equal('assistant');
      expect(r1.content).to.deep.equal([{ type: 'text', text: 'Quick answer.' }]);
      // 30 words 80 ms apart: longer than the 1 s the server is asked to wait, so it answers 202.
      const slowText = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
      const slow = await agent({ script: { token_delay_ms: 80, turns: [{ text: slowText }] } });
      const s2 = await troupe.sessions.create({ agent_id: slow.id, project_id: projectId });
      const r2 = await troupe.sessions.send(s2.id, 'take your time', { timeoutSeconds: 1 });
      expect(r2.content).to.deep.equal([{ type: 'text', text: slowText }]);
    });
  });

  it('projects.subscribe: agent:conversation events of the project over Socket.IO; another project is refused', async () => {
    const { projectId, troupe, agent } = await fixture();
    const a = await agent({ script: { turns: [{ text: 'Hi.', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] }] } });
    const sub = await troupe.projects.subscribe(projectId);
    const got: ProjectEvent[] = [];
    const statuses: string[] = [];
    sub.on('agent:conversation:status', (d) => statuses.push(d.status));
    void (async () => {
      for await (const e of sub) got.push(e);
    })();
    try {
      const s = await troupe.sessions.create({ agent_id: a.id, project_id: projectId, message: 'go' });
      await waitFor('the completed status', async () => statuses.includes('completed'));
      expect(got.find((e) => e.event === 'agent:conversation:started')?.data).to.include({ conversation_id: s.id, agent_id: a.id });
      const types = got.filter((e) => e.event === 'agent:conversation:event').map((e) => (e.data as { event_type: string }).event_type);
      expect(types).to.include.members(['message', 'status']);
    } finally {
      sub.close();
    }
    const other = await fixture();
    const err = await troupe.projects.subscribe(other.projectId).then(() => null, (e) => e);
    expect(err).to.be.instanceOf(TroupeError);
  });

  it('agents.connect: task events over /ws, and what was missed while disconnected recovered through /api/v1/updates, each once', async () => {
    const { keyA, keyB, agentB } = await connectedAgents();
    const { asA } = await pair(keyA, keyB);
    const troupe = await clientFor(keyB);
    const conn = troupe.agents.connect(keyB, { reconnectDelayMs: 1500 });
    const events: HubEvent[] = [];
    conn.on('event', (e) => events.push(e));
    let disconnected = false;
    let recovered = 0;
    conn.on('disconnected', () => (disconnected = true));
    conn.on('recovered', () => recovered++);
    try {
      await conn.ready;
      expect(conn.agentId).to.equal(agentB.id);
      const t1 = await asA.hub.tasks.create({ toAgentId: agentB.id, title: 'one', message: 'first' });
      await waitFor('task.created live', async () => events.some((e) => e.type === 'task.created' && e.taskId === t1.id));
      // The connection drops; while it is down, a message and a second task are sent.
      conn.dropConnection();
      await waitFor('the drop noticed', async () => disconnected);
      await asA.hub.tasks.send(t1.id, { content: 'while you were away' });
      const t2 = await asA.hub.tasks.create({ toAgentId: agentB.id, title: 'two', message: 'second' });
      await waitFor('recovered after the reconnect', async () => recovered > 0 && events.some((e) => e.type === 'task.created' && e.taskId === t2.id), 15_000);
      const missed = events.filter((e) => e.type === 'message.created' || (e.type === 'task.created' && e.taskId === t2.id));
      expect(missed).to.have.length(2);
      // Each event once, in cursor order, and nothing the log does not have.
      const cursors = events.map((e) => BigInt(e.cursor));
      expect(cursors).to.deep.equal([...cursors].sort((x, y) => (x < y ? -1 : 1)));
      expect(new Set(cursors).size).to.equal(cursors.length);
      const log = (await troupe.hub.updates({ limit: 1000 })).events.map((e) => e.cursor);
      expect(events.map((e) => e.cursor).every((c) => log.includes(c))).to.equal(true);
    } finally {
      conn.close();
    }
  });

  it('the generated types come from the live document: /openapi.json is what the generator builds offline', async () => {
    await import('../src/http/routes/index.js');
    const { buildOpenApi } = await import('../src/http/openapi.js');
    const { troupe } = await fixture();
    expect(await troupe.openapi()).to.deep.equal(JSON.parse(JSON.stringify(buildOpenApi())));
  });

  it('errors are typed from the {error, details} envelope', async () => {
    const { projectId, troupe, agent } = await fixture();
    const missing = await troupe.projects.get('00000000-0000-4000-8000-000000000000').catch((e) => e);
    expect(missing).to.be.instanceOf(TroupeError);
    expect(missing.status).to.equal(404);
    expect(missing.message).to.be.a('string').and.not.empty;
    const invalid = await troupe.agents.create(projectId, { name: 'x', max_iterations: 'many' } as never).catch((e) => e);
    expect(invalid).to.be.instanceOf(TroupeError);
    expect(invalid.status).to.equal(400);
    expect(invalid.details).to.deep.include({ path: '/max_iterations', message: 'must be integer' });
    const bad = await (await clientFor('not-a-token')).projects.list().catch((e) => e);
    expect(bad).to.be.instanceOf(TroupeError);
    expect(bad.status).to.equal(401);
    const a = await agent();
    const s = await troupe.sessions.create({ agent_id: a.id, project_id: projectId });
    const conflict = await troupe.sessions.resume(projectId, s.id).catch((e) => e);
    expect(conflict.status).to.equal(409);
    const nowhere = await new TroupeClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, token: 't', retries: 1, retryDelayMs: 10 }).projects.list().catch((e) => e);
    expect(nowhere).to.be.instanceOf(TroupeConnectionError);
    expect(nowhere.message).to.contain('Could not reach Troupe');
  });

  it('creates and sends carry an Idempotency-Key and are retried after a dropped connection without doing anything twice', async () => {
    const { owner, projectId } = await newProject();
    const a = await newAgent(projectId, owner.token);
    const proxy = await proxyTo((await apiServer()).url);
    try {
      const troupe = await clientFor(owner.token, proxy.url);
      proxy.dropNext(/^POST \/api\/v1\/sessions /);
      const s = await troupe.sessions.create({ agent_id: a.id, project_id: projectId, message: 'once' });
      expect(proxy.state.dropped).to.equal(1);
      const tries = proxy.state.seen.filter((l) => l.startsWith('POST /api/v1/sessions '));
      expect(tries).to.have.length(2);
      const key = tries[0].split(' ').pop()!;
      expect(key).to.match(/^[0-9a-f-]{36}$/);
      expect(tries[1].endsWith(key)).to.equal(true);
      const rows = await db('sessions').where({ project_id: projectId });
      expect(rows.map((r) => r.id)).to.deep.equal([s.id]);
      expect(await db('session_events').where({ session_id: s.id, event_type: 'message', event_source: 'user' }).count('* as n').first()).to.deep.equal({ n: '1' });

      // A send, dropped the same way: one user message recorded.
      proxy.dropNext(/^POST \/api\/v1\/projects\/[^/]+\/conversations\/[^/]+\/message /);
      await troupe.sessions.message(projectId, s.id, 'twice?');
      expect(proxy.state.dropped).to.equal(2);
      const userMessages = await db('session_events').where({ session_id: s.id, event_type: 'message', event_source: 'user' });
      expect(userMessages.map((e) => e.payload.message)).to.deep.equal(['once', 'twice?']);

      // A create the API cannot deduplicate (a project) is not retried: the error says so.
      proxy.dropNext(/^POST \/api\/v1\/projects /);
      const err = await troupe.projects.create({ name: uniq('p') }).catch((e) => e);
      expect(err).to.be.instanceOf(TroupeConnectionError);
      expect(proxy.state.seen.filter((l) => l.startsWith('POST /api/v1/projects '))).to.have.length(1);
    } finally {
      proxy.close();
    }
  });

  it('verifyWebhook accepts a real delivery and refuses a wrong secret, an altered body and an old timestamp', async () => {
    const deliveries: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        deliveries.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const port = (receiver.address() as net.AddressInfo).port;
      const { b, agentB, agentA, keyA, keyB } = await connectedAgents({ webhookUrl: `http://127.0.0.1:${port}/hook` });
      const { secret } = await b.troupe.agents.webhooks.rotateSecret(b.projectId, agentB.id);
      await pair(keyA, keyB);
      const d = await waitFor('a delivery', async () => deliveries[0], 15_000);
      const event = verifyWebhook({ secret, headers: d.headers, body: d.body });
      expect(event).to.include({ type: 'agent.connected', withAgentId: agentA.id, agentId: agentB.id });
      expect(isValidWebhook({ secret: 'whsec_wrong', headers: d.headers, body: d.body })).to.equal(false);
      expect(() => verifyWebhook({ secret, headers: d.headers, body: d.body.replace('agent.connected', 'agent.disconnected') })).to.throw(WebhookVerificationError, /does not match/);
      expect(() => verifyWebhook({ secret, headers: d.headers, body: d.body, now: Date.now() + 3600_000 })).to.throw(WebhookVerificationError, /replay/);
      // A Headers object works as well as Node's header record.
      expect(isValidWebhook({ secret, headers: new Headers(d.headers as Record<string, string>), body: Buffer.from(d.body) })).to.equal(true);
    } finally {
      receiver.close();
    }
  });

  it('connect() fails with 401 for a user token (an agent key is needed), and gives up when nobody listens', async () => {
    const u = await newUser();
    const troupe = await clientFor(u.token);
    const conn = troupe.agents.connect(u.token);
    const err = await conn.ready.catch((e) => e);
    expect(err).to.be.instanceOf(TroupeError);
    expect(err.status).to.equal(401);
    // Nobody listening: it gives up after its attempts instead of waiting forever.
    const nowhere = new TroupeClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, token: u.token }).agents.connect('trp_x', { reconnectDelayMs: 10, maxConnectAttempts: 2 });
    const gone = await nowhere.ready.catch((e) => e);
    expect(gone).to.be.instanceOf(TroupeConnectionError);
    expect(gone.message).to.contain('is the server running');
  });
});
