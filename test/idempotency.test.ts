import { expect } from 'chai';
import crypto from 'node:crypto';
import { db } from '../src/db/knex.js';
import { call, newAgent, newProject } from './support/harness.js';

/**
 * Idempotency keys held by an attempt that died (its process killed, or the database restarted
 * under it before it released the key) must not block the client's retry for long: the lease
 * runs out within seconds and the retry takes the key over (issue 12, reliability).
 */
describe('Idempotency-Key leases', function () {
  this.timeout(30_000);

  it("a retry takes over a dead attempt's key within seconds and creates exactly one session", async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const key = `retry-${crypto.randomUUID()}`;
    // What a dead attempt leaves behind: a pending key whose lease nobody renews.
    await db('idempotency_keys').insert({
      scope: `user:${owner.id} post /api/v1/sessions`, key, status: 0, body: JSON.stringify(null),
      owner: crypto.randomUUID(), lease_until: db.raw("now() + interval '1 second'"),
    });
    const t0 = Date.now();
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, headers: { 'idempotency-key': key }, body: { agent_id: agent.id, project_id: projectId } });
    expect(r.status).to.equal(201);
    expect(Date.now() - t0).to.be.below(10_000);
    const again = await call('POST', '/api/v1/sessions', { token: owner.token, headers: { 'idempotency-key': key }, body: { agent_id: agent.id, project_id: projectId } });
    expect(again.body.id).to.equal(r.body.id);
    expect(Number((await db('sessions').where({ project_id: projectId }).count<{ c: string }[]>('* as c'))[0].c)).to.equal(1);
  });

  it('a live attempt keeps its key: a concurrent duplicate waits for its answer', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const key = `dup-${crypto.randomUUID()}`;
    const body = { agent_id: agent.id, project_id: projectId, message: 'hi' };
    const [a, b] = await Promise.all([0, 1].map(() => call('POST', '/api/v1/sessions', { token: owner.token, headers: { 'idempotency-key': key }, body })));
    expect([a.status, b.status]).to.deep.equal([201, 201]);
    expect(a.body.id).to.equal(b.body.id);
  });
});
