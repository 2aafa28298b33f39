/**
 * Chat sessions (seed 004): one project member's running chat with one agent. A chat outlives
 * its conversations: messages go to the current conversation while it is not terminal; once it
 * has ended, the next message starts a new conversation whose first message carries the chat's
 * history as a transcript (a fresh session has no memory of the old one's event log).
 *
 * Human turns are recorded when posted; agent replies are recorded by a session hook when a chat
 * conversation commits an agent message, and announced as `agent:chat:reply` on the project's
 * dashboards. Both are keyed by their session event id, so nothing is recorded twice.
 */
import { db, type Db } from '../db/knex.js';
import { getSession, type EventRow, type SessionRow } from '../db/session-store.js';
import { badRequest, isDomainError, notFound } from '../domain/errors.js';
import { publishDashboard } from '../realtime/bus.js';
import { isUuid, type Membership } from './access.js';
import { withHistory } from './chat-history.js';
import { requireAgent } from './agents.js';
import { onSessionEvents } from './session-hooks.js';
import { createSession, isTerminal, sendMessage } from './sessions.js';

export { withHistory } from './chat-history.js';

export type ChatRow = Record<string, any>;

/** Chats with their current conversation's status and message stats. */
export function chatQuery(conn: Db = db) {
  return conn('chat_sessions as c')
    .leftJoin('sessions as s', 's.id', 'c.current_conversation_id')
    .select(
      'c.*',
      's.status as conversation_status',
      conn.raw('(select count(*)::int from chat_messages m where m.chat_session_id = c.id) as message_count'),
      conn.raw('(select max(m.created_at) from chat_messages m where m.chat_session_id = c.id) as last_message_at'),
    );
}

export function chatView(c: ChatRow) {
  return {
    id: c.id,
    project_id: c.project_id,
    agent_id: c.agent_id,
    member_id: c.member_id,
    title: c.title,
    conversation_id: c.current_conversation_id,
    conversation_status: c.conversation_status ?? null,
    message_count: c.message_count ?? 0,
    last_message_at: c.last_message_at ?? null,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

export function chatMessageView(m: Record<string, any>) {
  return { id: m.id, chat_session_id: m.chat_session_id, role: m.role, content: m.content, conversation_id: m.conversation_id, created_at: m.created_at };
}

/** A chat is visible only to the member it belongs to; anyone else gets 404, as for other projects. */
export async function requireChat(m: Membership, chatId: string, conn: Db = db): Promise<ChatRow> {
  const c = isUuid(chatId) ? await conn('chat_sessions').where({ id: chatId, project_id: m.projectId, member_id: m.memberId }).first() : null;
  if (!c) throw notFound('Chat session');
  return c;
}

async function firstUserEvent(sessionId: string): Promise<EventRow> {
  return db('session_events').where({ session_id: sessionId, event_type: 'message', event_source: 'user' }).orderBy('event_index').first();
}

/** The human turn, stamped with its session event's time so it sorts before the reply it caused. */
async function insertHuman(conn: Db, chat: ChatRow, text: string, conversationId: string, event: EventRow) {
  const [row] = await conn('chat_messages')
    .insert({ chat_session_id: chat.id, project_id: chat.project_id, role: 'user', content: text, conversation_id: conversationId, event_id: event.id, created_at: event.created_at })
    .returning('*');
  return row;
}

export async function startChat(m: Membership, agentRef: string, text: string) {
  const agent = await requireAgent(m.projectId, agentRef);
  // Checked before anything is written: bad input changes nothing.
  if (agent.kind === 'external') throw badRequest(`Agent "${agent.handle}" is external: chat sessions run hosted agents`);
  const [chat] = await db('chat_sessions')
    .insert({ project_id: m.projectId, agent_id: agent.id, member_id: m.memberId, title: text.replace(/\s+/g, ' ').trim().slice(0, 100) })
    .returning('*');
  // The chat row exists before the conversation, so a fast first reply always has a chat to land in.
  let conversation: SessionRow;
  try {
    conversation = await createSession(m, { agentRef: agent.id, message: text, triggerType: 'chat', chatSessionId: chat.id });
  } catch (err) {
    await db('chat_sessions').where({ id: chat.id }).del();
    throw err;
  }
  await db('chat_sessions').where({ id: chat.id }).update({ current_conversation_id: conversation.id, updated_at: db.fn.now() });
  await insertHuman(db, chat, text, conversation.id, await firstUserEvent(conversation.id));
  return { chat: await chatQuery().where('c.id', chat.id).first(), conversation };
}

/**
 * A follow-up: to the current conversation if it can still take messages, else to a new one
 * that starts with the transcript. The chat row is locked (FOR NO KEY UPDATE, which does not block
 * reply inserts referencing it) so two concurrent follow-ups cannot both start a conversation.
 */
export async function postFollowUp(m: Membership, chatId: string, text: string) {
  return db.transaction(async (tx) => {
    await requireChat(m, chatId, tx);
    const chat = await tx('chat_sessions').where({ id: chatId }).forNoKeyUpdate().first();
    let conversation = chat.current_conversation_id ? await getSession(chat.current_conversation_id) : undefined;
    let event: EventRow | undefined;
    if (conversation && !isTerminal(conversation.status)) {
      try {
        ({ session: conversation, event } = await sendMessage(conversation, text));
      } catch (err) {
        // It ended between our read and the send: start a new one below.
        if (!(isDomainError(err, 'conflict'))) throw err;
      }
    }
    let newConversation = false;
    if (!event) {
      const history = await tx('chat_messages').where({ chat_session_id: chat.id }).orderBy([{ column: 'created_at' }, { column: 'seq' }]);
      conversation = await createSession(m, { agentRef: chat.agent_id, message: withHistory(history, text), triggerType: 'chat', chatSessionId: chat.id });
      event = await firstUserEvent(conversation.id);
      newConversation = true;
    }
    await tx('chat_sessions').where({ id: chat.id }).update({ current_conversation_id: conversation!.id, updated_at: tx.fn.now() });
    const message = await insertHuman(tx, chat, text, conversation!.id, event);
    return { message, conversation: conversation!, newConversation };
  });
}

export async function listChatMessages(chatId: string, limit: number, offset: number) {
  await syncReplies(chatId);
  const base = db('chat_messages').where({ chat_session_id: chatId });
  const [{ count }] = await base.clone().count<{ count: string }[]>('* as count');
  const rows = await base.clone().orderBy([{ column: 'created_at' }, { column: 'seq' }]).limit(limit).offset(offset);
  return { messages: rows.map(chatMessageView), total: Number(count) };
}

const isReply = (e: EventRow) =>
  e.event_type === 'message' && e.event_source === 'agent' && typeof e.payload?.message === 'string' && e.payload.message.trim() !== '';

/** Records agent replies (once each, by event id) and announces the ones this call inserted. */
async function recordReplies(session: { id: string; project_id: string; chat_session_id: string }, events: EventRow[]): Promise<void> {
  const replies = events.filter(isReply);
  if (!replies.length) return;
  const inserted = await db('chat_messages')
    .insert(replies.map((e) => ({
      chat_session_id: session.chat_session_id, project_id: session.project_id, role: 'agent',
      content: e.payload.message as string, conversation_id: session.id, event_id: e.id, created_at: e.created_at,
    })))
    .onConflict('event_id')
    .ignore()
    .returning('*');
  for (const row of inserted) {
    await publishDashboard(session.project_id, 'agent:chat:reply', {
      message: row.content, session_id: row.chat_session_id, conversation_id: row.conversation_id, message_id: row.id,
    });
  }
}

/**
 * Hooks run after commit in the writing process; if that process died in between, a reply would
 * be missing. Reading the messages picks up any such reply from the durable event log.
 */
async function syncReplies(chatId: string): Promise<void> {
  const missing: EventRow[] = await db('session_events as e')
    .join('sessions as s', 's.id', 'e.session_id')
    .where({ 's.chat_session_id': chatId, 'e.event_type': 'message', 'e.event_source': 'agent' })
    .whereRaw("btrim(coalesce(e.payload->>'message', '')) <> ''")
    .whereNotExists(db('chat_messages as m').whereRaw('m.event_id = e.id'))
    .select('e.*', 's.chat_session_id');
  const bySession = new Map<string, EventRow[]>();
  for (const e of missing) bySession.set(e.session_id, [...(bySession.get(e.session_id) ?? []), e]);
  for (const [sessionId, events] of bySession) {
    await recordReplies({ id: sessionId, project_id: events[0].project_id, chat_session_id: chatId }, events);
  }
}

onSessionEvents(async (session, events) => {
  if (session.chat_session_id) await recordReplies({ id: session.id, project_id: session.project_id, chat_session_id: session.chat_session_id }, events);
});
