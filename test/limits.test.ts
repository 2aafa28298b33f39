import { expect } from 'chai';
import net from 'node:net';
import { redis } from '../src/lib/redis.js';
import { deltaBufferKey } from '../src/realtime/bus.js';
import { apiServer, call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';

/**
 * Resource ceilings that protect the shared api, worker and Redis from one client or sandbox
 * (issue 12, findings 5 and 6), reproduced as the attack and judged by what Redis and the socket
 * report.
 */
describe('ceilings on shared resources', function () {
  this.timeout(60_000);

  it('an Upgrade to a path nobody serves is answered 404 and closed, not held open', async () => {
    const { url } = await apiServer();
    const { port } = new URL(url);
    const sock = net.connect(Number(port), '127.0.0.1');
    let data = '';
    sock.on('data', (d) => (data += d.toString()));
    const closed = new Promise<boolean>((resolve) => {
      sock.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    sock.write('GET /api/v1/anything HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(await closed).to.equal(true);
    sock.destroy();
    expect(data).to.match(/^HTTP\/1\.1 404/);
    expect(data).to.contain('No WebSocket endpoint');
  });

  it('20 MB of tool output keeps at most ~1 MiB of live buffer in Redis (oldest dropped, with a marker), and stop deletes it', async () => {
    await sessionWorker();
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'flooding', tool_calls: [{ name: 'bash', input: { command: 'head -c 20000000 /dev/zero | tr "\\000" a; echo; sleep 30' } }] }] },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'go' } });
    const buf = deltaBufferKey(s.body.id);
    // The flood is over once a marker has dropped well over 10 MB and output has stopped growing.
    const head = await waitFor('the buffer to be capped', async () => {
      const first = await redis().lindex(buf, 0);
      if (!first) return null;
      const m = JSON.parse(first);
      return m.type === 'live_truncated' && m.dropped_bytes > 10_000_000 ? m : null;
    }, 40_000, 250);
    expect(head.session_id).to.equal(s.body.id);
    const items = await redis().lrange(buf, 0, -1);
    const bytes = items.reduce((n, x) => n + Buffer.byteLength(x), 0);
    expect(bytes).to.be.at.most(1024 * 1024 + 64 * 1024);
    expect(items.length).to.be.greaterThan(1);

    const stopped = await call('POST', `/api/v1/projects/${projectId}/conversations/${s.body.id}/stop`, { token: owner.token, body: {} });
    expect(stopped.status).to.equal(200);
    await waitFor('the buffer to be deleted', async () => (await redis().exists(buf)) === 0, 5000);
  });
});

describe('hostile tool output', function () {
  this.timeout(60_000);
  it('a NUL byte or a lone surrogate in tool output is stored escaped; the session carries on', async () => {
    await sessionWorker();
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'printing', tool_calls: [{ name: 'bash', input: { command: "printf 'a\\000b\\355\\240\\200c'" } }] }, { text: 'still here' }] },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'go' } });
    await waitFor('the turn to end', async () => (await call('GET', `/api/v1/sessions/${s.body.id}`, { token: owner.token })).body.status === 'idle');
    const r = await call('GET', `/api/v1/sessions/${s.body.id}`, { token: owner.token });
    expect(r.body.status).to.equal('idle');
    const result = r.body.messages.flatMap((m: any) => m.content).find((b: any) => b.type === 'tool_result');
    expect(JSON.stringify(result.content)).to.contain('a\u2400b');
    expect(r.body.messages.at(-1).content[0].text).to.equal('still here');
  });
});
