import { expect } from 'chai';
import Docker from 'dockerode';
import { call, newProject, newAgent, sessionWorker, waitFor } from './support/harness.js';
import { db } from '../src/db/knex.js';

/**
 * A tool call cut short by a pause is not silently run again on resume: its durable result says
 * it was interrupted, and the command ran once (it appends to a file in the sandbox, read back
 * through Docker). An agent with rerun_interrupted_tools keeps the old behaviour: it runs again.
 */
describe('tool calls cut short by a pause', function () {
  this.timeout(90_000);
  before(() => sessionWorker());
  const docker = new Docker();

  const eventsOf = (id: string) => db('session_events').where({ session_id: id }).orderBy('event_index');
  const containerOf = (id: string) => waitFor('container', async () => (await db('sessions as s').join('sandboxes as sb', 'sb.id', 's.sandbox_id').where('s.id', id).first('sb.container_id'))?.container_id as string | undefined);
  async function readInContainer(cid: string, cmd: string): Promise<string> {
    const exec = await docker.getContainer(cid).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => {
        // Demultiplex Docker's 8-byte frame headers.
        const buf = Buffer.concat(chunks);
        let out = '';
        for (let i = 0; i + 8 <= buf.length;) {
          const len = buf.readUInt32BE(i + 4);
          out += buf.subarray(i + 8, i + 8 + len).toString();
          i += 8 + len;
        }
        resolve(out);
      });
    });
  }

  async function pauseMidTool(agentBody: Record<string, unknown>) {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      ...agentBody,
      script: {
        turns: [
          { text: 'working', tool_calls: [{ name: 'bash', input: { command: 'echo run >> /workspace/runs.txt; sleep 4; echo done >> /workspace/runs.txt' } }] },
          { text: 'noted' },
        ],
      },
    });
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    const id: string = r.body.id;
    const cid = await containerOf(id);
    await waitFor('the command to start', async () => (await readInContainer(cid, 'cat /workspace/runs.txt 2>/dev/null')).includes('run'));
    const conv = `/api/v1/projects/${projectId}/conversations/${id}`;
    expect((await call('POST', `${conv}/pause`, { token: owner.token })).body).to.deep.equal({ status: 'paused' });
    expect((await call('POST', `${conv}/resume`, { token: owner.token })).status).to.equal(200);
    await waitFor('the session to be idle', async () => (await db('sessions').where({ id }).first()).status === 'idle', 30_000);
    const results = (await eventsOf(id)).filter((e) => e.event_type === 'tool_result');
    return { results, runs: await readInContainer(cid, 'cat /workspace/runs.txt'), agent };
  }

  it('by default: the result says interrupted, not re-run; the command ran once', async () => {
    const { results, runs, agent } = await pauseMidTool({});
    expect(agent.rerun_interrupted_tools).to.equal(false);
    expect(results).to.have.length(1);
    expect(results[0].payload).to.include({ is_error: true, interrupted: true });
    expect(results[0].payload.content).to.match(/interrupted/).and.match(/not run again/);
    expect(runs.split('\n').filter((l) => l === 'run'), runs).to.have.length(1);
    expect(runs).to.not.contain('done'); // the frozen run was ended on resume, not finished
  });

  it('rerun_interrupted_tools: true runs the call again from the start', async () => {
    const { results, runs, agent } = await pauseMidTool({ rerun_interrupted_tools: true });
    expect(agent.rerun_interrupted_tools).to.equal(true);
    expect(results).to.have.length(1);
    expect(results[0].payload.is_error).to.equal(false);
    expect(runs.split('\n').filter((l) => l === 'run'), runs).to.have.length(2);
    expect(runs).to.contain('done');
  });
});
