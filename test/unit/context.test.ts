import { expect } from 'chai';
import { messagesView, pendingToolUses, readState } from '../../src/runtime/context.js';
import type { EventRow } from '../../src/db/session-store.js';

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

  it('a tool call cut off before its result (a crash, a pause) is pending, and the model owes nothing until it runs', () => {
    const events = [
      ev('message', { role: 'user', message: 'go' }),
      ev('message', { role: 'assistant', message: '', context_index: 0 }, 'agent'),
      ev('tool_use', { id: 't1', name: 'bash', input: { command: 'true' } }, 'agent'),
      ev('tool_result', { tool_use_id: 't1', content: '', is_error: false }, 'environment'),
      ev('tool_use', { id: 't2', name: 'write_file', input: { path: 'a', content: 'b' } }, 'agent'),
    ];
    expect(pendingToolUses(events)).to.deep.equal([{ id: 't2', name: 'write_file', input: { path: 'a', content: 'b' } }]);
    const s = readState(events);
    expect(s.pending.map((p) => p.id)).to.deep.equal(['t2']);
    // The tool result of t1 came after the model's last answer (context_index 0): it needs the model.
    expect(s.needsModel).to.equal(true);
    expect(s.assistantTurns).to.equal(1);
    // No empty assistant text block: the call's message had no text, only tool calls.
    expect(s.messages.map((m) => [m.role, m.content.map((b) => b.type)])).to.deep.equal([
      ['user', ['text']], ['assistant', ['tool_use']], ['user', ['tool_result']], ['assistant', ['tool_use']],
    ]);
  });

  it('counts model calls and user texts; user content blocks (an image) are kept as sent; empty answers leave no turn', () => {
    const image = { type: 'image', media_type: 'image/png', data: 'iVBORw0KGgo=' };
    const events = [
      ev('message', { role: 'user', message: 'look', content: [{ type: 'text', text: 'look' }, image] }),
      ev('message', { role: 'assistant', message: '', context_index: 0 }, 'agent'),
      ev('message', { role: 'user', message: 'well?' }),
      ev('message', { role: 'assistant', message: 'a cat', context_index: 2 }, 'agent'),
    ];
    const s = readState(events);
    expect(s.assistantTurns).to.equal(2);
    expect(s.userTexts).to.deep.equal(['look', 'well?']);
    expect(s.needsModel).to.equal(false);
    // The empty answer is dropped, so the two user turns merge into one.
    expect(s.messages).to.have.length(2);
    expect(s.messages[0]).to.deep.equal({ role: 'user', content: [{ type: 'text', text: 'look' }, image, { type: 'text', text: 'well?' }] });
    expect(s.messages[1]).to.deep.equal({ role: 'assistant', content: [{ type: 'text', text: 'a cat' }] });
  });

  it('an empty log needs nothing and has no history', () => {
    expect(readState([])).to.deep.equal({ messages: [], pending: [], needsModel: false, assistantTurns: 0, userTexts: [] });
  });
});

describe('messagesView: seed 002 messages from the event log', () => {
  beforeEach(() => (n = 0));

  it('groups consecutive events of one speaker; tool results speak as the user; each model call starts a message', () => {
    const events = [
      ev('message', { role: 'user', message: 'list files' }),
      ev('message', { role: 'assistant', message: 'Looking.', context_index: 0 }, 'agent'),
      ev('tool_use', { id: 't1', name: 'bash', input: { command: 'ls' } }, 'agent'),
      ev('tool_result', { tool_use_id: 't1', content: 'a.txt', is_error: false }, 'environment'),
      ev('message', { role: 'assistant', message: 'One file.', context_index: 3 }, 'agent'),
      ev('message', { role: 'assistant', message: 'Anything else?', context_index: 3 }, 'agent'),
    ];
    const view = messagesView('s1', events);
    expect(view.map((m) => [m.id, m.role, m.content.map((b) => b.type)])).to.deep.equal([
      ['e0', 'user', ['text']],
      ['e1', 'assistant', ['text', 'tool_use']],
      ['e3', 'user', ['tool_result']],
      ['e4', 'assistant', ['text']],
      ['e5', 'assistant', ['text']],
    ]);
    expect(view.every((m) => m.session_id === 's1')).to.equal(true);
    expect(view[2].content[0]).to.deep.equal({ type: 'tool_result', tool_use_id: 't1', content: 'a.txt', is_error: false });
  });

  it('a model call with no text ends the current message, so its tool calls start a new one; status events are not messages', () => {
    const events = [
      ev('status', { status: 'running' }, 'system'),
      ev('message', { role: 'assistant', message: 'first', context_index: 0 }, 'agent'),
      ev('message', { role: 'assistant', message: '', context_index: 0 }, 'agent'),
      ev('tool_use', { id: 't1', name: 'finish', input: { summary: 'ok' } }, 'agent'),
    ];
    const view = messagesView('s1', events);
    expect(view.map((m) => [m.id, m.content.map((b) => b.type)])).to.deep.equal([['e1', ['text']], ['e3', ['tool_use']]]);
  });
});
