import { expect } from 'chai';
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { addMember, call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';
import { db } from '../src/db/knex.js';
import { parseApproval } from '../src/services/pairs.js';

const docker = new Docker();

async function readInContainer(containerId: string, cmd: string): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  docker.modem.demuxStream(stream, out, out);
  out.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((r) => stream.on('end', r));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Rows a pair request could write, in one project. Scoped to the project rather than global (the
 * harness's snapshotCounts) so another suite using the same database at the same time cannot
 * make it flap.
 */
async function pairCounts(projectId: string) {
  const out: Record<string, unknown> = {};
  for (const t of ['pair_sessions', 'sessions', 'sandboxes']) {
    out[t] = Number((await db(t).where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count);
  }
  out.pair_turns = Number((await db('pair_turns as t').join('pair_sessions as p', 'p.id', 't.pair_session_id').where('p.project_id', projectId).count<{ count: string }[]>('* as count'))[0].count);
  out.pair_updated = (await db('pair_sessions').where({ project_id: projectId }).max('updated_at as m'))[0].m;
  return out;
}

const SEED_KEYS = ['id', 'workspaceId', 'generatorId', 'reviewerId', 'task', 'status', 'turns', 'qualityScore', 'createdAt'];

describe('pair sessions', function () {
  this.timeout(60_000);
  before(async () => {
    await sessionWorker();
  });

  it('creates a pair with the seed shape and one workspace sandbox, at /pair-sessions and /api/v1/pair-sessions', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token, { handle: 'code-agent' });
    const rev = await newAgent(projectId, owner.token, { handle: 'review-agent' });
    const task = 'Implement a rate limiter middleware with sliding window';
    const r = await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: 'code-agent', reviewerId: 'review-agent', task } });
    expect(r.status).to.equal(201);
    for (const k of SEED_KEYS) expect(r.body, k).to.have.property(k);
    expect(r.body).to.include({ generatorId: gen.id, reviewerId: rev.id, task, status: 'active', qualityScore: null });
    expect(r.body.turns).to.deep.equal([]);
    expect(new Date(r.body.createdAt).toISOString()).to.equal(r.body.createdAt);
    const sb = await db('sandboxes').where({ id: r.body.workspaceId }).first();
    expect(sb).to.include({ project_id: projectId, agent_id: gen.id, container_id: null });
    // The workspace is a seed 002 sandbox too.
    expect((await call('GET', `/api/v1/sandboxes/${r.body.workspaceId}`, { token: owner.token })).status).to.equal(200);

    const v1 = await call('POST', '/api/v1/pair-sessions', { token: owner.token, body: { generatorId: rev.id, reviewerId: gen.id, task: 'swap', project_id: projectId } });
    expect(v1.status).to.equal(201);
    expect(v1.body.workspaceId).to.not.equal(r.body.workspaceId);
    const got = await call('GET', `/api/v1/pair-sessions/${r.body.id}`, { token: owner.token });
    expect(got.body).to.deep.equal(r.body);
    const list = await call('GET', '/pair-sessions', { token: owner.token });
    expect(list.status).to.equal(200);
    expect(list.body.total).to.equal(2);
    expect(list.body.pairSessions.map((p: any) => p.id)).to.deep.equal([v1.body.id, r.body.id]);
  });

  it('alternates generate and review between the right agents; interrupts any time; ends with a score; then 409', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token, { handle: 'gen' });
    const rev = await newAgent(projectId, owner.token, { handle: 'rev' });
    const p = (await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: gen.id, reviewerId: 'rev', task: 'write a haiku' } })).body;
    const turn = (agentId: string, role: string, content: string) =>
      call('POST', `/pair-sessions/${p.id}/turns`, { token: owner.token, body: { agentId, role, content } });

    const outOfTurn = await turn('rev', 'review', 'nothing to review yet');
    expect(outOfTurn.status).to.equal(409);
    expect(outOfTurn.body.error).to.match(/expected a generate turn/);
    const wrongAgent = await turn('rev', 'generate', 'I will write it');
    expect(wrongAgent.status).to.equal(409);
    expect(wrongAgent.body.error).to.match(/generate turns come from the generator/);
    const interrupt0 = await turn('human-alice', 'interrupt', 'Make it about autumn');
    expect(interrupt0.status).to.equal(201);
    expect(interrupt0.body).to.include({ agentId: 'human-alice', role: 'interrupt', content: 'Make it about autumn' });

    const g1 = await turn('gen', 'generate', 'Leaves fall slowly down');
    expect(g1.status).to.equal(201);
    expect(Object.keys(g1.body).sort()).to.deep.equal(['agentId', 'content', 'createdAt', 'id', 'role', 'sessionId']);
    expect(g1.body).to.include({ agentId: gen.id, role: 'generate' });
    expect((await turn(gen.id, 'generate', 'again')).status).to.equal(409);
    expect((await turn(gen.id, 'review', 'self review')).status).to.equal(409);
    // An interrupt does not change whose turn it is, and may come from one of the pair too.
    expect((await turn(gen.id, 'interrupt', 'wait, one more line')).status).to.equal(201);
    const r1 = await turn(rev.id, 'review', 'Needs a 5-7-5 structure');
    expect(r1.status).to.equal(201);
    expect((await turn('rev', 'review', 'again')).status).to.equal(409);
    expect((await turn(gen.handle, 'generate', 'Crisp leaves drift and fall')).status).to.equal(201);

    const got = await call('GET', `/pair-sessions/${p.id}`, { token: owner.token });
    expect(got.body.turns.map((t: any) => [t.role, t.agentId])).to.deep.equal([
      ['interrupt', 'human-alice'], ['generate', gen.id], ['interrupt', gen.id], ['review', rev.id], ['generate', gen.id],
    ]);

    const before = await pairCounts(projectId);
    for (const body of [{ outcome: 'completed', qualityScore: 1.5 }, { outcome: 'completed', qualityScore: -0.1 }, { outcome: 'done' }, {}, { outcome: 'completed', qualityScore: '0.5' }, { outcome: 'completed', extra: 1 }]) {
      const bad = await call('POST', `/pair-sessions/${p.id}/end`, { token: owner.token, body });
      expect(bad.status, JSON.stringify(body)).to.equal(400);
      expect(bad.body.error).to.be.a('string');
    }
    expect(await pairCounts(projectId)).to.deep.equal(before);
    expect((await call('GET', `/pair-sessions/${p.id}`, { token: owner.token })).body.status).to.equal('active');

    const end = await call('POST', `/pair-sessions/${p.id}/end`, { token: owner.token, body: { outcome: 'completed', qualityScore: 0.85 } });
    expect(end.status).to.equal(200);
    expect(end.body).to.include({ status: 'completed', qualityScore: 0.85 });
    const late = await turn(rev.id, 'review', 'late review');
    expect(late.status).to.equal(409);
    expect(late.body.error).to.match(/completed/);
    expect((await turn('someone', 'interrupt', 'hello?')).status).to.equal(409);
    expect((await call('POST', `/pair-sessions/${p.id}/end`, { token: owner.token, body: { outcome: 'abandoned' } })).status).to.equal(409);

    const p2 = (await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: gen.id, reviewerId: rev.id, task: 't' } })).body;
    const ab = await call('POST', `/api/v1/pair-sessions/${p2.id}/end`, { token: owner.token, body: { outcome: 'abandoned' } });
    expect(ab.body).to.include({ status: 'abandoned', qualityScore: null });
  });

  it('rejects bad input with nothing changed; other projects get 404 and viewers 403', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token);
    const rev = await newAgent(projectId, owner.token);
    const ext = await newAgent(projectId, owner.token, { kind: 'external' });
    const other = await newProject();
    const foreign = await newAgent(other.projectId, other.owner.token);
    const before = await pairCounts(projectId);
    const cases: Array<[unknown, number]> = [
      [{ generatorId: gen.id, reviewerId: gen.handle, task: 'x' }, 400],
      [{ generatorId: gen.id, reviewerId: 'nobody', task: 'x' }, 400],
      [{ generatorId: gen.id, reviewerId: foreign.id, task: 'x' }, 400],
      [{ generatorId: gen.id, reviewerId: rev.id }, 400],
      [{ generatorId: gen.id, reviewerId: rev.id, task: '' }, 400],
      [{ generatorId: gen.id, reviewerId: rev.id, task: 'x', maxTurns: 1 }, 400],
      [{ generatorId: gen.id, reviewerId: rev.id, task: 'x', drive: 'yes' }, 400],
      [{ generatorId: gen.id, reviewerId: ext.id, task: 'x', drive: true }, 400],
      [{ generatorId: gen.id, reviewerId: rev.id, task: 'x', project_id: other.projectId }, 404],
    ];
    for (const [body, expected] of cases) {
      const r = await call('POST', '/pair-sessions', { token: owner.token, body });
      expect(r.status, JSON.stringify(body)).to.equal(expected);
      expect(r.body.error).to.be.a('string');
    }
    expect((await call('POST', '/pair-sessions', { token: owner.token, raw: '{"task":' })).status).to.equal(400);
    expect(await pairCounts(projectId)).to.deep.equal(before);

    const p = (await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: gen.id, reviewerId: rev.id, task: 'x' } })).body;
    for (const path of [`/pair-sessions/${p.id}`, `/api/v1/pair-sessions/${p.id}`]) {
      expect((await call('GET', path, { token: other.owner.token })).status).to.equal(404);
    }
    expect((await call('POST', `/pair-sessions/${p.id}/turns`, { token: other.owner.token, body: { agentId: gen.id, role: 'generate', content: 'x' } })).status).to.equal(404);
    expect((await call('POST', `/pair-sessions/${p.id}/end`, { token: other.owner.token, body: { outcome: 'abandoned' } })).status).to.equal(404);
    expect((await call('GET', '/pair-sessions', { token: other.owner.token })).body.pairSessions).to.deep.equal([]);
    expect((await call('GET', '/pair-sessions/not-a-uuid', { token: owner.token })).status).to.equal(404);

    const viewer = await addMember(projectId, owner.token, 'viewer');
    expect((await call('GET', `/pair-sessions/${p.id}`, { token: viewer.token })).status).to.equal(200);
    const vt = await call('POST', `/pair-sessions/${p.id}/turns`, { token: viewer.token, body: { agentId: gen.id, role: 'generate', content: 'x' } });
    expect(vt.status).to.equal(403);
    expect((await call('POST', '/pair-sessions', { token: viewer.token, body: { generatorId: gen.id, reviewerId: rev.id, task: 'x', project_id: projectId } })).status).to.equal(403);
    expect((await call('POST', `/pair-sessions/${p.id}/end`, { token: viewer.token, body: { outcome: 'abandoned' } })).status).to.equal(403);
  });

  it('parses the reviewer approval convention', () => {
    expect(parseApproval('APPROVED score=0.85')).to.deep.equal({ approved: true, score: 0.85 });
    expect(parseApproval('Looks good. APPROVED (score: .9)')).to.deep.equal({ approved: true, score: 0.9 });
    expect(parseApproval('APPROVED')).to.deep.equal({ approved: true, score: null });
    expect(parseApproval('APPROVED score=7')).to.deep.equal({ approved: true, score: 1 });
    expect(parseApproval('NOT APPROVED score=0.2')).to.deep.equal({ approved: false, score: null });
    expect(parseApproval('approved, I guess')).to.deep.equal({ approved: false, score: null });
    expect(parseApproval(null)).to.deep.equal({ approved: false, score: null });
  });

  it('drive mode: the generator writes in the shared workspace, the reviewer reads it and approves with a score', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token, {
      handle: 'code-agent',
      script: { turns: [
        { text: 'Writing the limiter.', tool_calls: [{ name: 'bash', input: { command: "echo 'sliding window v1' > /workspace/limiter.txt" } }] },
        { text: 'I wrote /workspace/limiter.txt.' },
      ] },
    });
    const rev = await newAgent(projectId, owner.token, {
      handle: 'review-agent',
      script: { turns: [
        { text: 'Let me read it.', tool_calls: [{ name: 'bash', input: { command: 'cat /workspace/limiter.txt' } }] },
        { text: 'Good.', tool_calls: [{ name: 'finish', input: { summary: 'APPROVED score=0.85' } }] },
      ] },
    });
    const r = await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: 'code-agent', reviewerId: 'review-agent', task: 'Implement a rate limiter', drive: true } });
    expect(r.status).to.equal(201);
    expect(r.body).to.include({ status: 'active', qualityScore: null, drive: true, maxTurns: 6 });
    expect(r.body.turns).to.deep.equal([]);
    // The runtime plays generate/review itself.
    expect((await call('POST', `/pair-sessions/${r.body.id}/turns`, { token: owner.token, body: { agentId: gen.id, role: 'generate', content: 'x' } })).status).to.equal(409);

    // Polls the table, not the API: the pipeline's pair listener alone must drive it (GET would also nudge it).
    await waitFor('pair completed', async () => (await db('pair_sessions').where({ id: r.body.id }).first()).status !== 'active', 45_000);
    const done = (await call('GET', `/pair-sessions/${r.body.id}`, { token: owner.token })).body;
    expect(done).to.include({ status: 'completed', qualityScore: 0.85, endReason: 'approved by the reviewer' });
    expect(done.turns.map((t: any) => [t.role, t.agentId, t.content])).to.deep.equal([
      ['generate', gen.id, 'I wrote /workspace/limiter.txt.'],
      ['review', rev.id, 'APPROVED score=0.85'],
    ]);

    // Both worked in the one workspace: the file the generator wrote is there, and the reviewer read it.
    const sessions = await db('sessions').whereIn('id', done.turns.map((t: any) => t.sessionId)).select('*');
    expect(sessions.map((s) => [s.sandbox_id, s.trigger_type])).to.deep.equal([[r.body.workspaceId, 'pair'], [r.body.workspaceId, 'pair']]);
    const sb = await db('sandboxes').where({ id: r.body.workspaceId }).first();
    expect(await readInContainer(sb.container_id, 'cat /workspace/limiter.txt')).to.equal('sliding window v1\n');
    const reviewerRead = await db('session_events').where({ session_id: done.turns[1].sessionId, event_type: 'tool_result' }).orderBy('event_index').first();
    expect(reviewerRead.payload.content).to.contain('sliding window v1');
    const brief = await db('session_events').where({ session_id: done.turns[1].sessionId, event_type: 'message', event_source: 'user' }).orderBy('event_index').first();
    expect(brief.payload.message).to.contain('Implement a rate limiter').and.contain('I wrote /workspace/limiter.txt.').and.contain('limiter.txt').and.contain('APPROVED');
    // The generator's idle session is stopped with the pair; the workspace container stays.
    await waitFor('generator stopped', async () => (await db('sessions').where({ id: done.turns[0].sessionId }).first()).status === 'stopped');
    expect((await docker.getContainer(sb.container_id).inspect()).State.Status).to.equal('running');
    await call('DELETE', `/api/v1/sandboxes/${r.body.workspaceId}`, { token: owner.token });
  });

  it('drive mode: feedback goes back to the generator until maxTurns abandons the pair', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token, {
      script: { turns: [
        { text: 'v1', tool_calls: [{ name: 'bash', input: { command: 'echo v1 > /workspace/a.txt' } }] },
        { text: 'first version done' },
        { text: 'second version done', tool_calls: [{ name: 'bash', input: { command: 'echo v2 > /workspace/a.txt' } }] },
      ] },
    });
    const rev = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'Please add a header line.' }, { text: 'Still no header.' }] } });
    const r = await call('POST', '/api/v1/pair-sessions', { token: owner.token, body: { generatorId: gen.id, reviewerId: rev.id, task: 'write a.txt', drive: true, maxTurns: 4 } });
    expect(r.status).to.equal(201);
    await waitFor('pair ended', async () => (await db('pair_sessions').where({ id: r.body.id }).first()).status !== 'active', 45_000);
    const done = (await call('GET', `/api/v1/pair-sessions/${r.body.id}`, { token: owner.token })).body;
    expect(done.status).to.equal('abandoned');
    expect(done.qualityScore).to.equal(null);
    expect(done.endReason).to.match(/maxTurns \(4\)/);
    expect(done.turns.map((t: any) => [t.role, t.content])).to.deep.equal([
      ['generate', 'first version done'],
      ['review', 'Please add a header line.'],
      ['generate', 'second version done'],
      ['review', 'Still no header.'],
    ]);
    // Each side kept its session (woken with a message while idle), so it keeps its context.
    expect(done.turns[0].sessionId).to.equal(done.turns[2].sessionId);
    expect(done.turns[1].sessionId).to.equal(done.turns[3].sessionId);
    const genMessages = await db('session_events').where({ session_id: done.turns[0].sessionId, event_type: 'message', event_source: 'user' }).orderBy('event_index');
    expect(genMessages).to.have.length(2);
    expect(genMessages[1].payload.message).to.contain('Please add a header line.');
    for (const t of done.turns) {
      await waitFor('sessions stopped', async () => (await db('sessions').where({ id: t.sessionId }).first()).status === 'stopped');
    }
    await call('DELETE', `/api/v1/sandboxes/${r.body.workspaceId}`, { token: owner.token });
  });

  it('drive mode: an interrupt reaches the agent at work; ending the pair stops its session', async () => {
    const { owner, projectId } = await newProject();
    const gen = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'working', tool_calls: [{ name: 'bash', input: { command: 'sleep 30' } }] }] },
    });
    const rev = await newAgent(projectId, owner.token);
    const r = await call('POST', '/pair-sessions', { token: owner.token, body: { generatorId: gen.id, reviewerId: rev.id, task: 'slow work', drive: true } });
    const sessionId = await waitFor('round running', async () => {
      const p = await db('pair_sessions').where({ id: r.body.id }).first();
      return p.current_session_id && (await db('session_events').where({ session_id: p.current_session_id, event_type: 'tool_use' }).first()) && p.current_session_id;
    });
    const i = await call('POST', `/pair-sessions/${r.body.id}/turns`, { token: owner.token, body: { agentId: 'human-bob', role: 'interrupt', content: 'use redis' } });
    expect(i.status).to.equal(201);
    const delivered = await db('session_events').where({ session_id: sessionId, event_type: 'message', event_source: 'user' }).orderBy('event_index');
    expect(delivered.at(-1).payload.message).to.equal('Interrupt from human-bob: use redis');
    const end = await call('POST', `/pair-sessions/${r.body.id}/end`, { token: owner.token, body: { outcome: 'abandoned', qualityScore: 0 } });
    expect(end.body).to.include({ status: 'abandoned', qualityScore: 0 });
    expect(end.body.turns.map((t: any) => t.role)).to.deep.equal(['interrupt']);
    expect((await db('sessions').where({ id: sessionId }).first()).status).to.equal('stopped');
    await call('DELETE', `/api/v1/sandboxes/${r.body.workspaceId}`, { token: owner.token });
  });
});
