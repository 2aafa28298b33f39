import { expect } from 'chai';
import crypto from 'node:crypto';
import { db } from '../src/db/knex.js';
import { signUserToken } from '../src/http/auth.js';
import { freePort, startApi, startWorker, type Proc } from './support/processes.js';
import { waitFor } from './support/harness.js';

/**
 * Real worker processes on their own queue prefix: SIGKILL the one holding a session mid-turn
 * and the other takes it over (BullMQ stalled-job recovery), reattaches the container and
 * finishes, with the event log dense and nothing written twice.
 */
describe('worker failover (separate processes)', function () {
  this.timeout(90_000);
  const procs: Proc[] = [];
  let base = '';
  let token = '';
  const env = {
    TROUPE_REDIS_PREFIX: `troupe-failover-${crypto.randomBytes(3).toString('hex')}`,
    TROUPE_JOB_LOCK_MS: '2000',
    TROUPE_INSTANCE: process.env.TROUPE_INSTANCE ?? 'test',
    TROUPE_REAPER_INTERVAL_MS: '600000',
  };

  before(async () => {
    const port = await freePort();
    procs.push(await startApi({ ...env, PORT: String(port) }));
    procs.push(await startWorker(env), await startWorker(env));
    base = `http://127.0.0.1:${port}`;
    token = await signUserToken(`failover-${crypto.randomBytes(3).toString('hex')}`);
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
  });

  const post = async (path: string, body: unknown) => {
    const r = await fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as any };
  };

  async function startSession(command: string) {
    const project = await post('/api/v1/projects', { name: 'failover' });
    const agent = await post(`/api/v1/projects/${project.body.id}/agents`, {
      name: 'survivor', llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' },
      script: { turns: [{ text: 'working', tool_calls: [{ name: 'bash', input: { command } }] }, { text: 'all done' }] },
    });
    const s = await post('/api/v1/sessions', { agent_id: agent.body.id, project_id: project.body.id, message: 'go' });
    expect(s.status).to.equal(201);
    return s.body.id as string;
  }

  function workerProcOf(workerId: string): Proc {
    const pid = Number(workerId.split(':')[1]);
    const p = procs.find((x) => x.child.pid === pid);
    if (!p) throw new Error(`no worker process with pid ${pid}`);
    return p;
  }

  async function checkLog(id: string) {
    const events = await db('session_events').where({ session_id: id }).orderBy('event_index');
    expect(events.map((e) => e.event_index)).to.deep.equal(events.map((_, i) => i));
    const toolUses = events.filter((e) => e.event_type === 'tool_use');
    const results = events.filter((e) => e.event_type === 'tool_result');
    const replies = events.filter((e) => e.event_type === 'message' && e.event_source === 'agent').map((e) => e.payload.message);
    expect(toolUses).to.have.length(1);
    expect(results).to.have.length(1);
    expect(replies).to.deep.equal(['working', 'all done']);
    return results[0];
  }

  it('SIGKILL of the worker holding a session mid-tool: the other worker completes it, without re-running the cut-short call', async () => {
    const id = await startSession('echo started >> /workspace/log; sleep 3; echo finished >> /workspace/log; cat /workspace/log');
    const holder = await waitFor('tool running', async () => {
      const s = await db('sessions').where({ id }).first();
      const hasTool = await db('session_events').where({ session_id: id, event_type: 'tool_use' }).first();
      return hasTool && s.status === 'running' ? (s.worker_id as string) : null;
    });
    const victim = workerProcOf(holder);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const s = await waitFor('session finished elsewhere', async () => {
      const row = await db('sessions').where({ id }).first();
      return row.status === 'idle' ? row : null;
    }, 40_000);
    expect(s.worker_id).to.not.equal(holder);
    const result = await checkLog(id);
    // Not run again (rerun_interrupted_tools is off by default): the result says it was cut short.
    expect(result.payload).to.include({ is_error: true, interrupted: true });
    expect(result.payload.content).to.match(/interrupted/).and.match(/not run again/);
  });

  it('SIGTERM hands a live session back; another worker carries on', async () => {
    const survivors = procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    // bring the pool back to two workers
    if (survivors.filter((p) => !p.output().includes('Troupe is running')).length < 2) procs.push(await startWorker(env));
    const id = await startSession('sleep 2; echo ok');
    const holder = await waitFor('tool running', async () => {
      const s = await db('sessions').where({ id }).first();
      const hasTool = await db('session_events').where({ session_id: id, event_type: 'tool_use' }).first();
      return hasTool && s.status === 'running' ? (s.worker_id as string) : null;
    });
    const victim = workerProcOf(holder);
    victim.child.kill('SIGTERM');
    expect(await victim.exited).to.equal(0);
    const s = await waitFor('finished elsewhere', async () => {
      const row = await db('sessions').where({ id }).first();
      return row.status === 'idle' ? row : null;
    }, 30_000);
    expect(s.worker_id).to.not.equal(holder);
    await checkLog(id);
    const statuses = (await db('session_events').where({ session_id: id, event_type: 'status' }).orderBy('event_index')).map((e) => e.payload);
    expect(statuses.some((p) => p.reason === 'worker shutting down')).to.equal(true);
  });
});
