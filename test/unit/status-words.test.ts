import { expect } from 'chai';
import type { SessionStatus } from '../../src/db/session-store.js';
import { FROM_001, FROM_002, state002, status001 } from '../../src/services/status-words.js';

// Every session status, checked complete against the type at compile time.
const ALL = Object.keys({
  queued: 1, running: 1, idle: 1, paused: 1, completed: 1, stopped: 1, failed: 1,
} satisfies Record<SessionStatus, 1>) as SessionStatus[];

describe('status words across route families', () => {
  it('the table in the README: 004 as is, 002 state, 001 words', () => {
    const table = ALL.map((s) => [s, state002(s), status001(s)]);
    expect(table).to.deep.equal([
      ['queued', 'active', 'created'],
      ['running', 'active', 'active'],
      ['idle', 'active', 'active'],
      ['paused', 'paused', 'paused'],
      ['completed', 'completed', 'completed'],
      ['stopped', 'stopped', 'stopped'],
      ['failed', 'failed', 'failed'],
    ]);
  });

  it('each 001 word covers exactly the statuses that show as it (the ?status= filter and PATCH agree with the views)', () => {
    for (const [word, statuses] of Object.entries(FROM_001)) {
      expect(ALL.filter((s) => status001(s) === word), word).to.deep.equal(statuses);
    }
    expect(new Set(ALL.map(status001))).to.deep.equal(new Set(Object.keys(FROM_001)));
  });

  it('each 002 state covers exactly the statuses that show as it', () => {
    for (const [state, statuses] of Object.entries(FROM_002)) {
      expect(ALL.filter((s) => state002(s) === state), state).to.deep.equal(statuses);
    }
    expect(new Set(ALL.map(state002))).to.deep.equal(new Set(Object.keys(FROM_002)));
  });

  it('the words a family does not use never leak into it', () => {
    expect(ALL.map(status001)).not.to.include.members(['queued', 'running', 'idle']);
    expect(ALL.map(state002)).not.to.include.members(['queued', 'running', 'idle', 'created']);
  });
});
