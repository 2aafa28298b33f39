import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { call, newProject, newAgent, waitFor } from './support/harness.js';
import { db } from '../src/db/knex.js';
import { writeSession } from '../src/db/session-store.js';
import { runActivation } from '../src/runtime/actor.js';
import { sandboxDriver } from '../src/runtime/sandbox/index.js';
import { userMessage } from '../src/services/sessions.js';

/**
 * An internal failure of an activation shows on the session as a generic text with a short
 * reference; what actually went wrong (here: a setting the deployment refuses, naming its
 * configuration) is in the log only, under the same reference.
 */
describe('internal errors are generic on the session, detailed in the log', function () {
  this.timeout(60_000);

  it('a forced internal failure: the session says "Internal error (ref …)", the log has the cause', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
    expect(r.status).to.equal(201);
    const id: string = r.body.id;
    await waitFor('the session to rest', async () => ['idle', 'queued'].includes((await db('sessions').where({ id }).first()).status) || undefined);
    // A row no API would write: an image outside TROUPE_ALLOWED_IMAGES. The worker refuses it.
    const s = await db('sessions').where({ id }).first();
    await db('sandboxes').where({ id: s.sandbox_id }).update({ image: 'evil/secret-registry-image:latest', container_id: null });
    // Queued without a job, so only the activation below (with a log of our own) takes it.
    const w = await writeSession(id, [userMessage('go')], { from: ['idle', 'queued'], to: 'queued', bumpActivation: true });
    expect(w).to.not.equal(null);
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const outcome = await runActivation(id, { driver: sandboxDriver(), workerId: 'internal-errors-test', log: pino({ level: 'info' }, sink), live: new Map() });
    expect(outcome).to.equal('failed');

    const err = (await db('session_events').where({ session_id: id, event_type: 'error' }).orderBy('event_index', 'desc').first()).payload.message as string;
    expect(err).to.match(/^Internal error \(ref [0-9a-f]{8}\); the operator's log has the details$/);
    expect(err).to.not.contain('secret-registry').and.not.contain('TROUPE_');
    const ref = /ref ([0-9a-f]{8})/.exec(err)![1];
    expect((await db('sessions').where({ id }).first()).status).to.equal('failed');
    // The API shows the same generic text.
    const shown = await call('GET', `/api/v1/sessions/${id}`, { token: owner.token });
    expect(JSON.stringify(shown.body)).to.not.contain('secret-registry');
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.ref === ref);
    expect(logged, 'a log line with the reference').to.not.equal(undefined);
    expect(logged.level).to.equal(50);
    expect(JSON.stringify(logged.err)).to.contain('evil/secret-registry-image');
  });
});
