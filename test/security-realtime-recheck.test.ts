/**
 * Open streams are re-authorized (issue 12, finding 9): revoking an API key or removing a member
 * closes their SSE streams, Socket.IO connections and /ws connections within seconds
 * (TROUPE_REALTIME_RECHECK_MS, 5 s by default), with real clients on the real stack.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { addMember, apiServer, call, newAgent, newProject, waitFor } from './support/harness.js';
import { connectDashboard, openStream, subscribe } from './support/clients.js';

const CLOSED_WITHIN_MS = 12_000;

async function agentWithKey() {
  const { owner, projectId } = await newProject();
  const agent = await newAgent(projectId, owner.token);
  const k = await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/api-keys`, { token: owner.token, body: {} });
  expect(k.status).to.equal(201);
  const revoke = async () => expect((await call('DELETE', `/api/v1/projects/${projectId}/agents/${agent.id}/api-keys/${k.body.id}`, { token: owner.token })).status).to.equal(200);
  return { owner, projectId, agent, key: k.body.key as string, revoke };
}

async function memberOf(projectId: string, ownerToken: string) {
  const u = await addMember(projectId, ownerToken, 'member');
  const members = await call('GET', `/api/v1/projects/${projectId}/members`, { token: ownerToken });
  const row = (members.body.members ?? members.body).find((m: any) => m.user_id === u.id);
  const remove = async () => expect((await call('DELETE', `/api/v1/projects/${projectId}/members/${row.id}`, { token: ownerToken })).status).to.be.oneOf([200, 204]);
  return { ...u, remove };
}

/** An idle session (no message: nothing runs) the token's caller can stream. */
async function idleSession(token: string, agentId: string, projectId: string): Promise<string> {
  const s = await call('POST', '/api/v1/sessions', { token, body: { agent_id: agentId, project_id: projectId } });
  expect(s.status, JSON.stringify(s.body)).to.equal(201);
  return s.body.id;
}

async function within<T>(what: string, p: Promise<T>, ms = CLOSED_WITHIN_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('security: open streams are re-authorized (issue 12, finding 9)', function () {
  this.timeout(60_000);

  it('SSE: revoking the API key ends the stream within seconds, and reconnecting is refused', async () => {
    const a = await agentWithKey();
    const sid = await idleSession(a.key, a.agent.id, a.projectId);
    const { url } = await apiServer();
    const stream = openStream(`${url}/api/v1/sessions/${sid}/stream`, a.key);
    await waitFor('stream open', async () => stream.frames.length > 0 || stream.es.readyState === 1);
    let ended = false;
    void stream.ended.then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 500));
    expect(ended, 'open before the revocation').to.equal(false);
    const t0 = Date.now();
    await a.revoke();
    await within('SSE after key revocation', stream.ended);
    expect(Date.now() - t0).to.be.below(CLOSED_WITHIN_MS);
    expect((await call('GET', `/api/v1/sessions/${sid}/stream`, { token: a.key })).status).to.equal(401);
  });

  it('SSE: removing a member ends their stream within seconds', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const m = await memberOf(projectId, owner.token);
    const sid = await idleSession(m.token, agent.id, projectId);
    const { url } = await apiServer();
    const stream = openStream(`${url}/api/v1/sessions/${sid}/stream`, m.token);
    await waitFor('stream open', async () => stream.es.readyState === 1);
    await m.remove();
    await within('SSE after member removal', stream.ended);
    // The owner's stream of the same session is unaffected.
    const ownerStream = openStream(`${url}/api/v1/sessions/${sid}/stream`, owner.token);
    try {
      await waitFor('owner stream open', async () => ownerStream.es.readyState === 1);
    } finally {
      ownerStream.close();
    }
  });

  it('Socket.IO: a removed member (project room) and a revoked key (its conversation room) are disconnected within seconds; others stay', async () => {
    const { url } = await apiServer();
    const a = await agentWithKey();
    const m = await memberOf(a.projectId, a.owner.token);
    const sid = await idleSession(a.key, a.agent.id, a.projectId);
    const member = await connectDashboard(url, m.token);
    const agentSock = await connectDashboard(url, a.key);
    const ownerSock = await connectDashboard(url, a.owner.token);
    try {
      expect(await subscribe(member.socket, { project_id: a.projectId })).to.deep.equal({ ok: true });
      expect(await subscribe(agentSock.socket, { conversation_id: sid })).to.deep.equal({ ok: true });
      expect(await subscribe(ownerSock.socket, { project_id: a.projectId })).to.deep.equal({ ok: true });
      const gone = (s: typeof member.socket) => new Promise<void>((r) => (s.disconnected ? r() : s.once('disconnect', () => r())));
      await m.remove();
      await within('Socket.IO after member removal', gone(member.socket));
      expect(member.received.map(([n]) => n)).to.include('access_revoked');
      expect(agentSock.socket.connected, 'the agent key is still valid').to.equal(true);
      await a.revoke();
      await within('Socket.IO after key revocation', gone(agentSock.socket));
      expect(ownerSock.socket.connected, 'the owner is unaffected').to.equal(true);
    } finally {
      for (const s of [member, agentSock, ownerSock]) s.socket.close();
    }
  });

  it('/ws: revoking the API key closes the agent WebSocket with 4401 within seconds', async () => {
    const a = await agentWithKey();
    const { url } = await apiServer();
    const ws = new WebSocket(url.replace('http', 'ws') + '/ws', { headers: { authorization: `Bearer ${a.key}` } });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await a.revoke();
    expect(await within('/ws after key revocation', closed)).to.equal(4401);
  });
});
