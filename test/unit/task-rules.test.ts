import { expect } from 'chai';
import { canReport, REPORTABLE, reportableFrom, TASK_OPEN, TASK_STATUSES, TASK_TERMINAL, taskMoveForSession, type TaskStatus } from '../../src/services/task-rules.js';

describe('task state machine (seed 003)', () => {
  it('every status is either open or terminal, never both', () => {
    expect([...TASK_OPEN, ...TASK_TERMINAL].sort()).to.deep.equal([...TASK_STATUSES].sort());
    expect(TASK_OPEN.filter((s) => TASK_TERMINAL.includes(s))).to.deep.equal([]);
  });

  it('the target reports from open statuses only; nothing leaves a terminal status', () => {
    for (const to of TASK_STATUSES) {
      for (const from of reportableFrom(to)) expect(TASK_OPEN, `${from} → ${to}`).to.include(from);
      for (const from of TASK_TERMINAL) expect(canReport(from, to), `${from} → ${to}`).to.equal(false);
    }
    expect(Object.keys(REPORTABLE).sort()).to.deep.equal([...TASK_OPEN].sort());
  });

  it('the full table of reportable moves', () => {
    const table: Record<string, TaskStatus[]> = {};
    for (const from of TASK_STATUSES) table[from] = TASK_STATUSES.filter((to) => canReport(from, to));
    expect(table).to.deep.equal({
      submitted: ['working', 'input-required', 'completed', 'failed'],
      working: ['input-required', 'completed', 'failed'],
      'input-required': ['working', 'completed', 'failed'],
      completed: [],
      failed: [],
      cancelled: [],
    });
  });

  it('submitted and cancelled are never reported (cancel has its own route); a status does not move to itself', () => {
    expect(reportableFrom('submitted')).to.deep.equal([]);
    expect(reportableFrom('cancelled')).to.deep.equal([]);
    for (const s of TASK_STATUSES) expect(canReport(s, s), s).to.equal(false);
  });

  it('the compare-and-set sets for a report, as tasks.ts uses them', () => {
    expect(reportableFrom('working')).to.deep.equal(['submitted', 'input-required']);
    expect(reportableFrom('input-required')).to.deep.equal(['submitted', 'working']);
    expect(reportableFrom('completed')).to.deep.equal(TASK_OPEN);
    expect(reportableFrom('failed')).to.deep.equal(TASK_OPEN);
  });

  describe('a hosted target: its session status drives the task', () => {
    it('maps each session status to one compare-and-set, or none', () => {
      expect(taskMoveForSession('running')).to.deep.equal({ from: ['submitted', 'input-required'], to: 'working' });
      expect(taskMoveForSession('idle')).to.deep.equal({ from: ['submitted', 'working'], to: 'input-required' });
      expect(taskMoveForSession('completed')).to.deep.equal({ from: TASK_OPEN, to: 'completed' });
      expect(taskMoveForSession('failed')).to.deep.equal({ from: TASK_OPEN, to: 'failed' });
      expect(taskMoveForSession('stopped')).to.deep.equal({ from: TASK_OPEN, to: 'cancelled' });
      for (const s of ['queued', 'paused', 'bogus']) expect(taskMoveForSession(s), s).to.equal(null);
    });

    it('a session story moves the task along, and a late event never revives a finished task', () => {
      const play = (statuses: string[], start: TaskStatus = 'submitted') =>
        statuses.reduce<TaskStatus>((task, s) => {
          const move = taskMoveForSession(s);
          return move && move.from.includes(task) ? move.to : task;
        }, start);
      expect(play(['queued', 'running', 'idle'])).to.equal('input-required');
      expect(play(['running', 'idle', 'running', 'completed'])).to.equal('completed');
      expect(play(['running', 'paused', 'running', 'failed'])).to.equal('failed');
      expect(play(['running', 'stopped'])).to.equal('cancelled');
      // Already cancelled by the requester: the session's later statuses change nothing.
      expect(play(['running', 'idle', 'completed'], 'cancelled')).to.equal('cancelled');
      expect(play(['completed', 'running', 'failed'])).to.equal('completed');
    });
  });
});
