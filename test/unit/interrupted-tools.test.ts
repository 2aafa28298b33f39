import { expect } from 'chai';
import { interruptedResult, splitInterrupted, type PendingTool } from '../../src/runtime/context.js';

/** What an activation does with tool calls an earlier activation left without a result. */
describe('splitInterrupted: tool calls cut short are not silently re-run', () => {
  const call = (id: string): PendingTool => ({ id, name: 'bash', input: { command: `echo ${id}` } });

  it("by default, the first call an earlier activation left is recorded as interrupted; the rest (never started) run", () => {
    const r = splitInterrupted([call('t1'), call('t2'), call('t3')], new Set(), false);
    expect(r.interrupted?.id).to.equal('t1');
    expect(r.run.map((c) => c.id)).to.deep.equal(['t2', 't3']);
  });

  it('calls this activation recorded itself run as they are', () => {
    const r = splitInterrupted([call('t1'), call('t2')], new Set(['t1', 't2']), false);
    expect(r.interrupted).to.equal(undefined);
    expect(r.run.map((c) => c.id)).to.deep.equal(['t1', 't2']);
  });

  it('rerun_interrupted_tools: everything runs again, as before', () => {
    const r = splitInterrupted([call('t1'), call('t2')], new Set(), true);
    expect(r.interrupted).to.equal(undefined);
    expect(r.run.map((c) => c.id)).to.deep.equal(['t1', 't2']);
  });

  it('nothing pending: nothing to do', () => {
    expect(splitInterrupted([], new Set(), false)).to.deep.equal({ run: [] });
  });

  it('the recorded result is an error that says the call was interrupted and not re-run', () => {
    const r = interruptedResult(call('t9'));
    expect(r).to.include({ tool_use_id: 't9', name: 'bash', is_error: true, interrupted: true });
    expect(r.content).to.match(/interrupted/).and.match(/not run again/);
  });
});
