import { expect } from 'chai';
import crypto from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { db } from '../src/db/knex.js';
import { getSession, writeSession } from '../src/db/session-store.js';
import { installPorts, ports, type Ports } from '../src/domain/ports.js';
import type { EventRow, SessionRow } from '../src/domain/sessions.js';
import { EventPipeline } from '../src/pipeline/pipeline.js';
import { createSession } from '../src/services/sessions.js';
import { apiServer, newAgent, newProject, waitFor } from './support/harness.js';

/**
 * The event pipeline on real Redis, BullMQ and Postgres, with listeners of the test's own:
 * feature reactions run after the writer has returned (never in its call stack), in event order,
 * are retried when they fail (nothing lost), and a session whose reactions were never queued (a
 * process died between commit and enqueue) is found by the sweep.
 */
describe('event pipeline', function () {
  this.timeout(60_000);
  let saved: Ports;
  let pipeline: EventPipeline;
  let consumer: { close(): Promise<void> } | undefined;
  const seen: Array<{ session: string; indexes: number[] }> = [];
  let failuresLeft = 0;
  // Marks the writer's call stack (and everything it awaits): a reaction must never run in it.
  const writer = new AsyncLocalStorage<true>();
  let ranInsideWriter = false;

  before(async () => {
    await apiServer(); // installs the process's ports; this suite swaps the pipeline for its own
    saved = ports();
    pipeline = new EventPipeline(`test-reactions-${crypto.randomBytes(3).toString('hex')}`).onSessionEvents({
      name: 'test-recorder',
      mode: 'queued',
      wants: (s: SessionRow) => s.trigger_type === 'pair',
      handle: async (session: SessionRow, events: EventRow[]) => {
        if (writer.getStore()) ranInsideWriter = true;
        if (failuresLeft > 0) {
          failuresLeft--;
          throw new Error('listener failure injected by the test');
        }
        seen.push({ session: session.id, indexes: events.map((e) => e.event_index) });
      },
    });
    installPorts({ ...saved, events: pipeline });
    consumer = pipeline.startConsumer({ concurrency: 4 });
  });
  after(async () => {
    await consumer?.close();
    await pipeline.close();
    installPorts(saved);
  });

  async function featureSession(): Promise<SessionRow> {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const m = { projectId, memberId: (await db('project_members').where({ project_id: projectId }).first('id')).id, role: 'owner' as const, principal: { kind: 'user' as const, userId: owner.id } };
    // No message: the session rests idle, so nothing but this test writes to it.
    return createSession(m, { agentRef: agent.id, triggerType: 'pair' });
  }
  const note = (text: string) => ({ event_type: 'message' as const, event_source: 'user' as const, payload: { role: 'user', message: text } });
  const indexesSeen = (sessionId: string) => seen.filter((x) => x.session === sessionId).flatMap((x) => x.indexes);

  it('runs reactions after the writer returns, in order, and retries a failing listener until nothing is lost', async () => {
    const s = await featureSession();
    failuresLeft = 2;
    for (let i = 0; i < 5; i++) {
      await writer.run(true, () => writeSession(s.id, [note(`n${i}`)]));
    }
    const last = (await getSession(s.id))!.next_event_index - 1;
    await waitFor('every event handled', async () => (await getSession(s.id))!.reacted_index === last, 20_000);
    expect(failuresLeft).to.equal(0);
    expect(ranInsideWriter).to.equal(false);
    const handled = indexesSeen(s.id);
    // At least once, in order: each index appears, and the sequence never goes back.
    expect([...new Set(handled)]).to.deep.equal(Array.from({ length: last + 1 }, (_, i) => i));
    for (let i = 1; i < handled.length; i++) expect(handled[i]).to.be.greaterThan(handled[i - 1]);
  });

  it('the sweep queues sessions whose reactions were never queued', async () => {
    const s = await featureSession();
    await waitFor('creation handled', async () => (await getSession(s.id))!.reacted_index === 0);
    const before = indexesSeen(s.id).length;
    // As if the process died between commit and enqueue: events committed, nothing queued.
    const idx = (await getSession(s.id))!.next_event_index;
    await db('session_events').insert({ session_id: s.id, project_id: s.project_id, event_index: idx, event_type: 'message', event_source: 'user', payload: JSON.stringify({ role: 'user', message: 'lost' }) });
    await db('sessions').where({ id: s.id }).update({ next_event_index: idx + 1, updated_at: db.raw("now() - interval '1 minute'") });
    expect(await pipeline.sweepLagging(10_000)).to.be.greaterThan(0);
    await waitFor('the swept event handled', async () => (await getSession(s.id))!.reacted_index === idx, 20_000);
    expect(indexesSeen(s.id).length).to.be.greaterThan(before);
    expect(indexesSeen(s.id)).to.include(idx);
  });

  it('plain api sessions queue no reactions', async () => {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token);
    const m = { projectId, memberId: (await db('project_members').where({ project_id: projectId }).first('id')).id, role: 'owner' as const, principal: { kind: 'user' as const, userId: owner.id } };
    const s = await createSession(m, { agentRef: agent.id });
    await writeSession(s.id, [note(crypto.randomUUID())]);
    await new Promise((r) => setTimeout(r, 300));
    expect(indexesSeen(s.id)).to.deep.equal([]);
  });
});
