import { expect } from 'chai';
import { readState } from '../src/runtime/context.js';
import type { EventRow } from '../src/db/session-store.js';

let n = 0;
const ev = (event_type: EventRow['event_type'], payload: Record<string, unknown>, event_source: EventRow['event_source'] = 'user'): EventRow => ({
  id: `e${n}`, session_id: 's', project_id: 'p', event_index: n++, event_type, event_source, payload, created_at: new Date(),
});

describe('readState: the event log as model history', () => {
  beforeEach(() => (n = 0));

  it('a message sent while the model was answering still needs an answer, and follows that answer', () => {
    const events = [
      ev('message', { role: 'user', message: 'first' }),
      ev('message', { role: 'user', message: 'sent mid-stream' }),
      ev('message', { role: 'assistant', message: 'answer to first', context_index: 0 }, 'agent'),
    ];
    const s = readState(events);
    expect(s.needsModel).to.equal(true);
    expect(s.messages.map((m) => [m.role, m.content.map((b) => (b as { text?: string }).text)])).to.deep.equal([
      ['user', ['first']], ['assistant', ['answer to first']], ['user', ['sent mid-stream']],
    ]);
  });

  it('tool results come first in their user turn; nothing is owed after a full answer', () => {
    const events = [
      ev('message', { role: 'user', message: 'go' }),
      ev('message', { role: 'assistant', message: 'running', context_index: 0 }, 'agent'),
      ev('tool_use', { id: 't1', name: 'bash', input: { command: 'sleep 1' } }, 'agent'),
      ev('message', { role: 'user', message: 'also this' }),
      ev('tool_result', { tool_use_id: 't1', content: 'ok', is_error: false }, 'environment'),
    ];
    const s = readState(events);
    expect(s.needsModel).to.equal(true);
    expect(s.messages.at(-1)!.content.map((b) => b.type)).to.deep.equal(['tool_result', 'text']);
    const done = readState([...events, ev('message', { role: 'assistant', message: 'done', context_index: 4 }, 'agent')]);
    expect(done.needsModel).to.equal(false);
    expect(done.pending).to.deep.equal([]);
  });
});
