/**
 * The first message of a conversation that continues a chat (seed 004): a fresh session has no
 * memory of the old one's event log, so the chat's earlier turns travel as a transcript. Pure, so
 * the unit tier checks it without a database.
 */
export const HISTORY_LIMIT = 40_000;

/**
 * The earlier turns as a transcript, then the new message. Oldest turns are dropped first when
 * the transcript gets long (past `limit` characters; the newest turn always stays).
 */
export function withHistory(history: Array<{ role: string; content: string }>, text: string, limit = HISTORY_LIMIT): string {
  if (!history.length) return text;
  const lines = history.map((h) => `${h.role === 'agent' ? 'Agent' : 'User'}: ${h.content}`);
  let omitted = 0;
  let size = lines.reduce((n, l) => n + l.length + 2, 0);
  while (lines.length > 1 && size > limit) {
    size -= lines.shift()!.length + 2;
    omitted++;
  }
  return [
    'This chat continues from an earlier conversation that has ended. The chat so far:',
    ...(omitted ? [`(${omitted} earlier messages omitted)`] : []),
    lines.join('\n\n'),
    'New message from the user:',
    text,
  ].join('\n\n');
}
