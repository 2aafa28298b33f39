/**
 * /metrics protection and bounded tool labels (issue 12, finding 9), on the real stack: loopback
 * reads it, a relayed request does not, TROUPE_METRICS_TOKEN opens it (a separate api process
 * started with the token), and a model's made-up tool names never become label values.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import { call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { request } from './support/http.js';
import { KNOWN_TOOLS } from '../src/lib/metrics.js';
import { finishTool, pullRequestTools, shellAndFileTools } from '../src/runtime/tools/index.js';
import { TASK_TOOLS } from '../src/services/tasks.js';

describe('metrics: access and labels (issue 12, finding 9)', function () {
  this.timeout(90_000);

  it('a loopback client reads /metrics; the same request relayed by a proxy (X-Forwarded-For / Forwarded) is 403', async () => {
    const direct = await call('GET', '/metrics');
    expect(direct.status).to.equal(200);
    expect(direct.text).to.contain('troupe_http_request_duration_seconds');
    for (const headers of [{ 'x-forwarded-for': '203.0.113.7' }, { forwarded: 'for=203.0.113.7' }] as Array<Record<string, string>>) {
      const relayed = await call('GET', '/metrics', { headers });
      expect(relayed.status).to.equal(403);
      expect(relayed.body).to.deep.equal({ error: relayed.body.error });
      expect(relayed.text).not.to.contain('troupe_');
    }
  });

  describe('with TROUPE_METRICS_TOKEN (a separate api process)', () => {
    const token = crypto.randomBytes(16).toString('hex');
    let api: Proc | undefined;
    let base = '';
    before(async () => {
      const port = await freePort();
      api = await startApi({ PORT: String(port), HOST: '127.0.0.1', TROUPE_METRICS_TOKEN: token, TROUPE_PUBLIC_URL: `http://127.0.0.1:${port}` });
      base = `http://127.0.0.1:${port}`;
    });
    after(async () => api?.stop());

    it('a non-local client needs the bearer token: none or a wrong one is 401, the right one reads the metrics', async () => {
      const relayed = { 'x-forwarded-for': '203.0.113.7' };
      const none = await request(base, 'GET', '/metrics', { headers: relayed });
      expect(none.status).to.equal(401);
      expect(none.body.error).to.match(/TROUPE_METRICS_TOKEN/);
      expect((await request(base, 'GET', '/metrics', { headers: relayed, token: `${token}x` })).status).to.equal(401);
      const ok = await request(base, 'GET', '/metrics', { headers: relayed, token });
      expect(ok.status).to.equal(200);
      expect(ok.text).to.contain('troupe_http_request_duration_seconds');
      // Loopback itself still needs nothing.
      expect((await request(base, 'GET', '/metrics')).status).to.equal(200);
    });
  });

  it('KNOWN_TOOLS is exactly the built-in, task and pull request tools', () => {
    expect([...KNOWN_TOOLS].sort()).to.deep.equal([...shellAndFileTools().definitions, ...finishTool().definitions, ...TASK_TOOLS, ...pullRequestTools(true).definitions].map((t) => t.name).sort());
  });

  it("a model's made-up tool names are counted as \"other\", never as labels of their own", async () => {
    await sessionWorker();
    const { owner, projectId } = await newProject();
    const invented = Array.from({ length: 5 }, () => `invented_${crypto.randomBytes(6).toString('hex')}`);
    const agent = await newAgent(projectId, owner.token, {
      script: { turns: [{ text: 'trying', tool_calls: invented.map((name) => ({ name, input: {} })) }, { text: 'done', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] }] },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'go' } });
    expect(s.status).to.equal(201);
    await waitFor('session completed', async () => (await call('GET', `/api/v1/sessions/${s.body.id}`, { token: owner.token })).body.status === 'completed');
    // The registry of the module instance the worker runs with. Under mocha + tsx the harness's api
    // (imported statically) and worker (imported dynamically, as here) get separate instances of
    // the metrics module, so the api's /metrics would not show this worker's counts.
    const text = await (await import('../src/lib/metrics.js')).registry.metrics();
    for (const name of invented) expect(text).not.to.contain(name);
    expect(text).to.match(/troupe_tool_call_duration_seconds_count\{tool="other"\} \d+/);
    expect(text).to.match(/troupe_tool_call_duration_seconds_count\{tool="finish"\} \d+/);
  });
});
