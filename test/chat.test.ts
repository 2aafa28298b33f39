import { expect } from 'chai';
import { addMember, apiServer, call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';
import { connectDashboard, subscribe } from './support/clients.js';
import { db } from '../src/db/knex.js';

const P = (projectId: string) => `/api/v1/projects/${projectId}`;

async function messages(projectId: string, chatId: string, token: string) {
  const r = await call('GET', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token });
  expect(r.status).to.equal(200);
  return r.body.messages as Array<Record<string, any>>;
}
const replies = (ms: Array<Record<string, any>>) => ms.filter((m) => m.role === 'agent');
const conversationStatus = async (id: string) => (await db('sessions').where({ id }).first('status'))?.status as string;

/**
 * Rows a chat request could write, in one project. Scoped to the project rather than global (the
 * harness's snapshotCounts) so another suite using the same database at the same time cannot
 * make it flap.
 */
async function chatCounts(projectId: string) {
  const out: Record<string, unknown> = {};
  for (const t of ['chat_sessions', 'chat_messages', 'sessions', 'session_events', 'sandboxes']) {
    out[t] = Number((await db(t).where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count);
  }
  out.chat_updated = (await db('chat_sessions').where({ project_id: projectId }).max('updated_at as m'))[0].m;
  out.session_updated = (await db('sessions').where({ project_id: projectId }).max('updated_at as m'))[0].m;
  return out;
}

describe('chat sessions', function () {
  this.timeout(60_000);
  before(async () => {
    await sessionWorker();
  });

  it('starts a chat, records and announces replies, and carries the history into a new conversation once one has ended', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'Hello, I can help with that.' }, { text: 'Here are the criteria.' }] },
    });
    const { url } = await apiServer();
    const dash = await connectDashboard(url, owner.token);
    try {
      expect(await subscribe(dash.socket, { project_id: projectId })).to.deep.equal({ ok: true });

      const r = await call('POST', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: owner.token, body: { message: 'Can you help me write acceptance criteria?' } });
      expect(r.status).to.equal(201);
      const chatId = r.body.id;
      expect(r.body).to.include({ project_id: projectId, agent_id: agent.id, title: 'Can you help me write acceptance criteria?' });
      expect(r.body.conversation).to.include({ trigger_type: 'chat', agent_id: agent.id });
      // Queued when created; a fast worker may already have claimed it by the time it is read back.
      expect(r.body.conversation.status).to.be.oneOf(['queued', 'running']);
      expect(r.body.conversation_id).to.equal(r.body.conversation.id);
      const conv1 = r.body.conversation.id;
      expect((await db('sessions').where({ id: conv1 }).first()).chat_session_id).to.equal(chatId);

      // The reply lands in the chat and on the project's dashboards.
      await waitFor('first reply', async () => replies(await messages(projectId, chatId, owner.token)).length === 1);
      const reply = await waitFor('agent:chat:reply', async () => dash.received.find(([n]) => n === 'agent:chat:reply'));
      expect(reply[1]).to.include({ message: 'Hello, I can help with that.', session_id: chatId, conversation_id: conv1 });
      let ms = await messages(projectId, chatId, owner.token);
      expect(ms.map((m) => [m.role, m.content, m.conversation_id])).to.deep.equal([
        ['user', 'Can you help me write acceptance criteria?', conv1],
        ['agent', 'Hello, I can help with that.', conv1],
      ]);
      expect(Object.keys(ms[0]).sort()).to.deep.equal(['chat_session_id', 'content', 'conversation_id', 'created_at', 'id', 'role']);
      expect(ms[0].chat_session_id).to.equal(chatId);

      // A follow-up to the idle conversation wakes that same conversation.
      await waitFor('idle', async () => (await conversationStatus(conv1)) === 'idle');
      const f1 = await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: owner.token, body: { message: 'For PACA-42 please.' } });
      expect(f1.status).to.equal(201);
      expect(f1.body).to.include({ role: 'user', content: 'For PACA-42 please.', conversation_id: conv1, new_conversation: false, chat_session_id: chatId });
      await waitFor('second reply', async () => replies(await messages(projectId, chatId, owner.token)).length === 2);
      await waitFor('second dashboard reply', async () => dash.received.filter(([n]) => n === 'agent:chat:reply').length === 2);

      // Once the conversation is stopped, the next message starts a new one that carries the history.
      await waitFor('idle again', async () => (await conversationStatus(conv1)) === 'idle');
      expect((await call('POST', `${P(projectId)}/conversations/${conv1}/stop`, { token: owner.token })).status).to.equal(200);
      const f2 = await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: owner.token, body: { message: 'Now add edge cases.' } });
      expect(f2.status).to.equal(201);
      expect(f2.body.new_conversation).to.equal(true);
      const conv2 = f2.body.conversation_id;
      expect(conv2).to.not.equal(conv1);
      expect(f2.body.conversation).to.include({ id: conv2, trigger_type: 'chat' });
      const first = await db('session_events').where({ session_id: conv2, event_type: 'message', event_source: 'user' }).orderBy('event_index').first();
      const text = first.payload.message as string;
      expect(text).to.contain('User: Can you help me write acceptance criteria?');
      expect(text).to.contain('Agent: Hello, I can help with that.');
      expect(text).to.contain('User: For PACA-42 please.');
      expect(text).to.contain('Agent: Here are the criteria.');
      expect(text.endsWith('Now add edge cases.')).to.equal(true);
      // The new conversation is a fresh session: its script starts over.
      await waitFor('reply in the new conversation', async () => replies(await messages(projectId, chatId, owner.token)).length === 3);
      ms = await messages(projectId, chatId, owner.token);
      expect(ms.map((m) => [m.role, m.content])).to.deep.equal([
        ['user', 'Can you help me write acceptance criteria?'],
        ['agent', 'Hello, I can help with that.'],
        ['user', 'For PACA-42 please.'],
        ['agent', 'Here are the criteria.'],
        ['user', 'Now add edge cases.'],
        ['agent', 'Hello, I can help with that.'],
      ]);
      expect(ms.slice(4).every((m) => m.conversation_id === conv2)).to.equal(true);
      await waitFor('third dashboard reply', async () => dash.received.filter(([n]) => n === 'agent:chat:reply').length === 3);
      const dashReplies = dash.received.filter(([n]) => n === 'agent:chat:reply').map(([, d]) => d);
      expect(dashReplies.every((d) => d.session_id === chatId)).to.equal(true);

      // A reply whose hook was lost (its process died after the commit) is recovered from the event log on read.
      await db('chat_messages').where({ id: ms[5].id }).del();
      const healed = await messages(projectId, chatId, owner.token);
      expect(healed.map((m) => m.content)).to.deep.equal(ms.map((m) => m.content));
      expect(healed[5].conversation_id).to.equal(conv2);

      const list = await call('GET', `${P(projectId)}/agents/${agent.id}/chat-sessions`, { token: owner.token });
      expect(list.status).to.equal(200);
      expect(list.body.total).to.equal(1);
      expect(list.body.chat_sessions[0]).to.include({ id: chatId, conversation_id: conv2, message_count: 6 });
    } finally {
      dash.socket.close();
    }
  });

  it('a follow-up while the conversation runs goes to it; after it completes, to a new one', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: {
        turns: [
          { text: 'Let me check.', tool_calls: [{ name: 'bash', input: { command: 'sleep 1.5' } }] },
          { text: 'Noted.', tool_calls: [{ name: 'finish', input: { summary: 'answered' } }] },
        ],
      },
    });
    const r = await call('POST', `${P(projectId)}/agents/${agent.id}/chat-sessions`, { token: owner.token, body: { message: 'first' } });
    const chatId = r.body.id;
    const conv1 = r.body.conversation.id;
    // Post while its tool runs: the message joins the model's context at the next turn boundary.
    await waitFor('tool running', async () => !!(await db('session_events').where({ session_id: conv1, event_type: 'tool_use' }).first()));
    const f1 = await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: owner.token, body: { message: 'while you run' } });
    expect(f1.status).to.equal(201);
    expect(f1.body).to.include({ conversation_id: conv1, new_conversation: false });
    expect(f1.body.conversation.status).to.be.oneOf(['running', 'queued']);
    // The agent's next turn (after the tool) sees the message and finishes the conversation.
    await waitFor('completed', async () => (await conversationStatus(conv1)) === 'completed', 30_000);
    const f2 = await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: owner.token, body: { message: 'after the end' } });
    expect(f2.body.new_conversation).to.equal(true);
    expect(f2.body.conversation_id).to.not.equal(conv1);
    const first = await db('session_events').where({ session_id: f2.body.conversation_id, event_type: 'message', event_source: 'user' }).orderBy('event_index').first();
    expect(first.payload.message).to.contain('User: first').and.contain('User: while you run').and.contain('Agent: Noted.');
    const ms = await messages(projectId, chatId, owner.token);
    expect(ms.filter((m) => m.role === 'user').map((m) => m.content)).to.deep.equal(['first', 'while you run', 'after the end']);
    await call('POST', `${P(projectId)}/conversations/${f2.body.conversation_id}/stop`, { token: owner.token });
  });

  it('is private to its member: other members and other projects get 404, viewers 403', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'hi' }] } });
    const r = await call('POST', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: owner.token, body: { message: 'mine' } });
    expect(r.status).to.equal(201);
    const chatId = r.body.id;
    const colleague = await addMember(projectId, owner.token, 'member');
    const viewer = await addMember(projectId, owner.token, 'viewer');
    const other = await newProject();

    for (const who of [colleague, viewer]) {
      expect((await call('GET', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: who.token })).status).to.equal(404);
      const list = await call('GET', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: who.token });
      expect(list.status).to.equal(200);
      expect(list.body).to.deep.equal({ chat_sessions: [], total: 0 });
    }
    const post = await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: colleague.token, body: { message: 'peek' } });
    expect(post.status).to.equal(404);
    expect(post.body.error).to.be.a('string');
    // Nor can anyone speak into the chat's conversation through the session routes (the owner
    // included: the chat records human turns); nothing is written.
    const conv = r.body.conversation_id;
    // (the conversation is still running, so count what an injection would add: user messages)
    const userMessages = () => db('session_events').where({ session_id: conv, event_type: 'message', event_source: 'user' }).count<{ count: string }[]>('* as count');
    const before = await userMessages();
    for (const token of [colleague.token, owner.token]) {
      for (const [path, body] of [
        [`${P(projectId)}/conversations/${conv}/message`, { message: 'injected' }],
        [`/api/sessions/${conv}/message`, { content: 'injected' }],
        [`/api/v1/sessions/${conv}/messages`, { role: 'user', content: [{ type: 'text', text: 'injected' }] }],
      ] as const) {
        const res = await call('POST', path, { token, body });
        if (token === colleague.token) {
          // Another member does not even see the chat's conversation (issue 12, finding 9).
          expect(res.status, path).to.equal(404);
          continue;
        }
        expect(res.status, path).to.equal(409);
        expect(res.body.error).to.contain('chat session');
      }
    }
    const after = await userMessages();
    expect(after[0].count).to.equal(before[0].count);
    // Other projects see nothing, not even through their own project's path.
    expect((await call('GET', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: other.owner.token })).status).to.equal(404);
    expect((await call('GET', `${P(other.projectId)}/chat-sessions/${chatId}/messages`, { token: other.owner.token })).status).to.equal(404);
    expect((await call('POST', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: other.owner.token, body: { message: 'x' } })).status).to.equal(404);
    // Viewers read only.
    const vStart = await call('POST', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: viewer.token, body: { message: 'x' } });
    expect(vStart.status).to.equal(403);
    expect(vStart.body.error).to.be.a('string');
    expect((await call('POST', `${P(projectId)}/chat-sessions/${chatId}/messages`, { token: viewer.token, body: { message: 'x' } })).status).to.equal(403);
    // The colleague's own chat with the same agent is theirs alone.
    const c2 = await call('POST', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: colleague.token, body: { message: 'theirs' } });
    expect(c2.status).to.equal(201);
    const ownerList = await call('GET', `${P(projectId)}/agents/${agent.handle}/chat-sessions`, { token: owner.token });
    expect(ownerList.body.chat_sessions.map((c: any) => c.id)).to.deep.equal([chatId]);
    for (const c of [r.body.conversation_id, c2.body.conversation_id]) await call('POST', `${P(projectId)}/conversations/${c}/stop`, { token: owner.token });
  });

  it('bad input gets a 4xx envelope and changes nothing; retries with an Idempotency-Key start one chat', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'ok' }] } });
    const external = await newAgent(projectId, owner.token, { kind: 'external' });
    const start = `${P(projectId)}/agents/${agent.handle}/chat-sessions`;
    const ok = await call('POST', start, { token: owner.token, body: { message: 'hello' } });
    const chatId = ok.body.id;
    const follow = `${P(projectId)}/chat-sessions/${chatId}/messages`;
    // Let the worker finish with the chat first, so only a bad request could change the counts.
    await waitFor('reply', async () => (await conversationStatus(ok.body.conversation_id)) === 'idle' && replies(await messages(projectId, chatId, owner.token)).length === 1);
    const before = await chatCounts(projectId);
    const cases: Array<[string, string, { body?: unknown; raw?: string }, number]> = [
      ['POST', start, { body: {} }, 400],
      ['POST', start, { body: { message: '' } }, 400],
      ['POST', start, { body: { message: 42 } }, 400],
      ['POST', start, { body: { message: 'x', extra: true } }, 400],
      ['POST', start, { raw: '{"message": ' }, 400],
      ['POST', `${P(projectId)}/agents/nobody/chat-sessions`, { body: { message: 'x' } }, 404],
      ['POST', `${P(projectId)}/agents/${external.handle}/chat-sessions`, { body: { message: 'x' } }, 400],
      ['POST', follow, { body: { message: ['x'] } }, 400],
      ['POST', follow, { body: { text: 'x' } }, 400],
      ['POST', `${P(projectId)}/chat-sessions/not-a-uuid/messages`, { body: { message: 'x' } }, 404],
      ['POST', `${P(projectId)}/chat-sessions/00000000-0000-4000-8000-000000000000/messages`, { body: { message: 'x' } }, 404],
      ['GET', `${follow}?limit=0`, {}, 400],
      ['GET', `${P(projectId)}/agents/${agent.handle}/chat-sessions?offset=-1`, {}, 400],
    ];
    for (const [method, path, opts, expected] of cases) {
      const res = await call(method, path, { token: owner.token, ...opts });
      expect(res.status, `${method} ${path} ${JSON.stringify(opts)}`).to.equal(expected);
      expect(res.body.error, `${method} ${path}`).to.be.a('string');
    }
    expect(await chatCounts(projectId)).to.deep.equal(before);

    const headers = { 'idempotency-key': 'chat-start-1' };
    const a = await call('POST', start, { token: owner.token, body: { message: 'once' }, headers });
    const b = await call('POST', start, { token: owner.token, body: { message: 'once' }, headers });
    expect(a.status).to.equal(201);
    expect(b.status).to.equal(201);
    expect(b.body.id).to.equal(a.body.id);
    expect(Number((await db('chat_sessions').where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count)).to.equal(2);
    for (const c of [ok.body.conversation_id, a.body.conversation_id]) await call('POST', `${P(projectId)}/conversations/${c}/stop`, { token: owner.token });
  });
});
