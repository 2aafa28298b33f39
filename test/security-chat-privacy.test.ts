/**
 * A chat's conversations belong to its member (issue 12, finding 9): other members of the project
 * can neither read nor steer them through the conversation, session or stream routes, nor
 * subscribe to them over Socket.IO (404, as for another project), nor find them in any list of
 * conversations or sessions; the project's owners and admins can, and so can the member.
 */
import { expect } from 'chai';
import { addMember, apiServer, call, newAgent, newProject } from './support/harness.js';
import { connectDashboard, subscribe } from './support/clients.js';

describe('security: chat conversations are private to their member (issue 12, finding 9)', function () {
  this.timeout(60_000);

  it('another member gets 404 on every conversation, session and stream route, and Socket.IO refuses; owner, admin and the member see it', async () => {
    const { owner, projectId } = await newProject();
    const alice = await addMember(projectId, owner.token, 'member');
    const bob = await addMember(projectId, owner.token, 'member');
    const admin = await addMember(projectId, owner.token, 'admin');
    // A script that never ends its first turn would need a worker; the chat needs none to exist.
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'hello' }] } });
    const chat = await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/chat-sessions`, { token: alice.token, body: { message: 'my secret plan' } });
    expect(chat.status).to.equal(201);
    const cid = chat.body.conversation.id as string;
    const P = `/api/v1/projects/${projectId}`;

    const reads: Array<[string, string, unknown?]> = [
      ['GET', `${P}/conversations/${cid}?include_events=true`],
      ['GET', `${P}/conversations/${cid}/events`],
      ['GET', `/api/v1/sessions/${cid}`],
      ['GET', `/api/sessions/${cid}`],
    ];
    const writes: Array<[string, string, unknown?]> = [
      ['POST', `${P}/conversations/${cid}/pause`, {}],
      ['POST', `${P}/conversations/${cid}/resume`, {}],
      ['POST', `${P}/conversations/${cid}/stop`, {}],
      ['POST', `${P}/conversations/${cid}/message`, { message: 'hijack' }],
      ['POST', `/api/v1/sessions/${cid}/interrupt`, {}],
      ['PATCH', `/api/sessions/${cid}`, { status: 'stopped' }],
      ['DELETE', `/api/sessions/${cid}`],
    ];
    for (const [method, path, body] of [...reads, ...writes, ['GET', `/api/v1/sessions/${cid}/stream`] as [string, string]]) {
      const r = await call(method, path, { token: bob.token, body });
      expect(r.status, `${method} ${path}`).to.equal(404);
      expect(r.body.error, `${method} ${path}`).to.match(/not found/);
      expect(r.text).not.to.contain('my secret plan');
    }
    // Nothing Bob sent changed it (a worker may be running it meanwhile: look for his traces).
    const after = await call('GET', `${P}/conversations/${cid}/events?limit=1000`, { token: alice.token });
    expect(after.status).to.equal(200);
    expect(after.body.events.map((e: any) => e.payload?.message)).not.to.include('hijack');
    expect(after.body.events.map((e: any) => e.payload?.status)).not.to.include.members(['paused']);
    expect(after.body.events.map((e: any) => e.payload?.status)).not.to.include.members(['stopped']);

    for (const who of [alice, owner, admin]) {
      for (const [method, path] of reads) expect((await call(method, path, { token: who.token })).status, `${method} ${path}`).to.equal(200);
    }

    const { url } = await apiServer();
    const asBob = await connectDashboard(url, bob.token);
    const asAdmin = await connectDashboard(url, admin.token);
    try {
      expect(await subscribe(asBob.socket, { conversation_id: cid })).to.deep.equal({ error: 'Conversation not found' });
      expect(await subscribe(asAdmin.socket, { conversation_id: cid })).to.deep.equal({ ok: true });
    } finally {
      asBob.socket.close();
      asAdmin.socket.close();
    }
  });

  it('lists leave it out for another member (004 conversations, 001 sessions, a sandbox\'s sessions); owner, admin and the member see it', async () => {
    const { owner, projectId } = await newProject();
    const alice = await addMember(projectId, owner.token, 'member');
    const bob = await addMember(projectId, owner.token, 'member');
    const admin = await addMember(projectId, owner.token, 'admin');
    const agent = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'hello' }] } });
    const chat = await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/chat-sessions`, { token: alice.token, body: { message: 'my secret plan' } });
    expect(chat.status).to.equal(201);
    const cid = chat.body.conversation.id as string;
    // A plain session of the same agent stays visible to everyone in the project.
    const plain = await call('POST', '/api/v1/sessions', { token: bob.token, body: { agent_id: agent.id, project_id: projectId } });
    expect(plain.status).to.equal(201);
    const sandboxId = (await call('GET', `/api/v1/sessions/${cid}`, { token: alice.token })).body.sandbox_id as string;

    const lists: Array<[string, (body: any) => string[]]> = [
      [`/api/v1/projects/${projectId}/agents/${agent.id}/conversations?limit=100`, (b) => b.conversations.map((x: any) => x.id)],
      [`/api/sessions?project_id=${projectId}`, (b) => b.sessions.map((x: any) => x.id)],
      ['/api/sessions', (b) => b.sessions.map((x: any) => x.id)],
      [`/api/v1/sandboxes/${sandboxId}/sessions`, (b) => b.map((x: any) => x.id)],
    ];
    for (const [path, ids] of lists) {
      const asBob = await call('GET', path, { token: bob.token });
      if (path.includes('/sandboxes/') && asBob.status === 404) continue; // not even the sandbox: fine too
      expect(asBob.status, path).to.equal(200);
      expect(ids(asBob.body), `${path} as another member`).to.not.include(cid);
      expect(asBob.text, path).to.not.contain('my secret plan');
      if (!path.includes('/sandboxes/')) expect(ids(asBob.body), `${path} still lists plain sessions`).to.include(plain.body.id);
      for (const who of [alice, owner, admin]) {
        const r = await call('GET', path, { token: who.token });
        expect(r.status, path).to.equal(200);
        expect(ids(r.body), `${path} as the member, an owner or an admin`).to.include(cid);
      }
    }
    // The 004 total counts what the caller may see.
    const bobTotal = (await call('GET', `/api/v1/projects/${projectId}/agents/${agent.id}/conversations`, { token: bob.token })).body.total;
    const aliceTotal = (await call('GET', `/api/v1/projects/${projectId}/agents/${agent.id}/conversations`, { token: alice.token })).body.total;
    expect(aliceTotal - bobTotal).to.equal(1);
  });
});
