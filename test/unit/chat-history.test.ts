import { expect } from 'chai';
import { HISTORY_LIMIT, withHistory } from '../../src/services/chat-history.js';

describe('withHistory: a chat continued in a new conversation', () => {
  it('without history the message goes as it is', () => {
    expect(withHistory([], 'hello')).to.equal('hello');
  });

  it('earlier turns come first as a transcript, then the new message', () => {
    const text = withHistory([{ role: 'human', content: 'hi' }, { role: 'agent', content: 'hello!' }], 'and now?');
    expect(text).to.equal([
      'This chat continues from an earlier conversation that has ended. The chat so far:',
      'User: hi\n\nAgent: hello!',
      'New message from the user:',
      'and now?',
    ].join('\n\n'));
  });

  it('drops the oldest turns first when the transcript is too long, and says how many', () => {
    const history = Array.from({ length: 10 }, (_, i) => ({ role: i % 2 ? 'agent' : 'human', content: `${i}`.padEnd(30, '.') }));
    const text = withHistory(history, 'next', 120);
    expect(text).to.include('(7 earlier messages omitted)');
    expect(text).not.to.include('User: 6');
    expect(text).to.include('Agent: 7').and.include('User: 8').and.include('Agent: 9');
    expect(text.endsWith('New message from the user:\n\nnext')).to.equal(true);
  });

  it('keeps the newest turn even when it alone is over the limit', () => {
    const text = withHistory([{ role: 'human', content: 'old' }, { role: 'agent', content: 'x'.repeat(HISTORY_LIMIT + 10) }], 'q');
    expect(text).to.include('(1 earlier messages omitted)');
    expect(text).to.include(`Agent: ${'x'.repeat(HISTORY_LIMIT + 10)}`);
  });
});
