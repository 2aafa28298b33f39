/**
 * Long event logs are read in pages (issue 12, finding 9): SSE without Last-Event-ID replays a
 * log of thousands of events completely and in order (read 500 at a time), and
 * GET /api/v1/sessions/:sid returns the newest 100 messages by default, with ?limit= and
 * ?before= paging back through the rest. The events are inserted directly into a test session.
 */
import { expect } from 'chai';
import { apiServer, call, newAgent, newProject, waitFor } from './support/harness.js';
import { openStream } from './support/clients.js';
import { db } from '../src/db/knex.js';

const N = 3000;

/** An idle session whose log is then grown to `n` events: alternating user and agent messages. */
async function sessionWithLongLog(n: number) {
  const { owner, projectId } = await newProject();
  const agent = await newAgent(projectId, owner.token);
  const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id } });
  expect(s.status).to.equal(201);
  const sid = s.body.id as string;
  const start = (await db('sessions').where({ id: sid }).first('next_event_index')).next_event_index as number;
  const rows = [];
  for (let i = start; i < n; i++) {
    const user = i % 2 === 0;
    rows.push({
      session_id: sid, project_id: projectId, event_index: i, event_type: 'message', event_source: user ? 'user' : 'agent',
      payload: JSON.stringify(user ? { role: 'user', message: `q${i}` } : { role: 'assistant', message: `a${i}`, turn: i }),
    });
  }
  for (let i = 0; i < rows.length; i += 1000) await db('session_events').insert(rows.slice(i, i + 1000));
  await db('sessions').where({ id: sid }).update({ next_event_index: n });
  return { sid, token: owner.token, start };
}

describe('long event logs are paged (issue 12, finding 9)', function () {
  this.timeout(60_000);

  it(`SSE without Last-Event-ID replays all ${N} events, in order, each once`, async () => {
    const { sid, token } = await sessionWithLongLog(N);
    const { url } = await apiServer();
    const stream = openStream(`${url}/api/v1/sessions/${sid}/stream`, token);
    try {
      await waitFor('the whole log', async () => stream.frames.filter((f) => f.id !== null).length >= N, { timeoutMs: 30_000 });
      const ids = stream.frames.filter((f) => f.id !== null).map((f) => Number(f.id));
      expect(ids).to.deep.equal(Array.from({ length: N }, (_, i) => i));
      const last = stream.frames.filter((f) => f.id !== null).pop()!;
      expect(last.data.text ?? last.data.payload.message).to.equal(`a${N - 1}`);
    } finally {
      stream.close();
    }
  });

  it('GET /api/v1/sessions/:sid returns the newest 100 messages by default; ?limit= and ?before= page back through all of them', async () => {
    const { sid, token, start } = await sessionWithLongLog(N);
    const first = await call('GET', `/api/v1/sessions/${sid}`, { token });
    expect(first.status).to.equal(200);
    expect(first.body.messages).to.have.length(100);
    expect(first.body.messages_has_more).to.equal(true);
    expect(first.body.messages.at(-1).content[0].text).to.equal(`a${N - 1}`);
    expect(first.body.messages_before).to.equal(N - 100);

    // Every page, newest first, until there is nothing older.
    const seen: string[] = [];
    let before: number | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const r: any = await call('GET', `/api/v1/sessions/${sid}?limit=1000${before !== null ? `&before=${before}` : ''}`, { token });
      expect(r.status).to.equal(200);
      expect(r.body.messages.length).to.be.at.most(1000);
      seen.unshift(...r.body.messages.map((m: any) => m.content[0].text));
      if (!r.body.messages_has_more) {
        expect(r.body.messages_before).to.equal(null);
        break;
      }
      before = r.body.messages_before;
    }
    const expected = Array.from({ length: N - start }, (_, k) => (((start + k) % 2 === 0) ? `q${start + k}` : `a${start + k}`));
    expect(seen).to.deep.equal(expected);
    expect((await call('GET', `/api/v1/sessions/${sid}?limit=1001`, { token })).status).to.equal(400);
  });
});
