/**
 * Chat sessions (seed 004): one project member's running chat with one agent. A chat outlives
 * its conversations: messages go to the current conversation while it is not terminal; once it
 * has ended, the next message starts a new conversation whose first message carries the chat's
 * history as a transcript (a fresh session has no memory of the old one's event log).
 *
 * Human turns are recorded when posted; agent replies are recorded by the event pipeline's chat
 * listener when a chat
 * conversation commits an agent message, and announced as `agent:chat:reply` on the project's
 * dashboards. Both are keyed by their session event id, so nothing is recorded twice.
 */
import crypto from 'node:crypto';
import * as chats from '../db/repositories/chats.js';
import type { ChatMessageRow, ChatRow, ChatWithStats } from '../db/repositories/chats.js';
import * as sessionEvents from '../db/repositories/session-events.js';
import { getSession, type EventRow, type SessionRow } from '../db/session-store.js';
import { badRequest, isDomainError, notFound } from '../domain/errors.js';
import { isUuid, type Membership } from './access.js';
import { withHistory } from './chat-history.js';
import { requireAgent } from './agents.js';
import { ports } from '../domain/ports.js';
import { createSession, isTerminal, sendMessage } from './sessions.js';

export type { ChatRow };
export { withHistory } from './chat-history.js';

export function chatView(c: ChatWithStats) {
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

export function chatMessageView(m: ChatMessageRow) {
  return { id: m.id, chat_session_id: m.chat_session_id, role: m.role, content: m.content, conversation_id: m.conversation_id, created_at: m.created_at };
}

/** A chat is visible only to the member it belongs to; anyone else gets 404, as for other projects. */
export async function requireChat(m: Membership, chatId: string): Promise<ChatRow> {
  const c = isUuid(chatId) ? await chats.ofMember(chatId, m.projectId, m.memberId) : null;
  if (!c) throw notFound('Chat session');
  return c;
}

/** The conversation's opening message (every conversation is created with one). */
async function firstUserEvent(sessionId: string): Promise<EventRow> {
  return (await sessionEvents.firstUserMessage(sessionId))!;
}

/** The human turn, stamped with its session event's time so it sorts before the reply it caused. */
async function insertHuman(chat: ChatRow, text: string, conversationId: string, event: EventRow): Promise<ChatMessageRow> {
  return chats.insertMessage({
    chat_session_id: chat.id, project_id: chat.project_id, role: 'user', content: text, conversation_id: conversationId, event_id: event.id, created_at: event.created_at,
  });
}

/** The member's chats with an agent, newest first. */
export async function listChats(m: Membership, agentRef: string, page: { limit: number; offset: number }) {
  const agent = await requireAgent(m.projectId, agentRef);
  const { rows, total } = await chats.listWithStats({ projectId: m.projectId, agentId: agent.id, memberId: m.memberId }, page);
  return { chat_sessions: rows.map(chatView), total };
}

export async function startChat(m: Membership, agentRef: string, text: string, work: { repository?: string; baseBranch?: string } = {}) {
  const agent = await requireAgent(m.projectId, agentRef);
  // Checked before anything is written: bad input changes nothing.
  if (agent.kind === 'external') throw badRequest(`Agent "${agent.handle}" is external: chat sessions run hosted agents`);
  const chat = await chats.insert({ project_id: m.projectId, agent_id: agent.id, member_id: m.memberId, title: text.replace(/\s+/g, ' ').trim().slice(0, 100) });
  // The chat row exists before the conversation, so a fast first reply always has a chat to land in.
  let conversation: SessionRow;
  try {
    conversation = await createSession(m, { agentRef: agent.id, message: text, triggerType: 'chat', chatSessionId: chat.id, ...work });
  } catch (err) {
    await chats.remove(chat.id);
    throw err;
  }
  await chats.setCurrentConversation(chat.id, conversation.id);
  await insertHuman(chat, text, conversation.id, await firstUserEvent(conversation.id));
  return { chat: (await chats.byIdWithStats(chat.id))!, conversation };
}

/**
 * A follow-up: to the current conversation if it can still take messages, else to a new one
 * that starts with the transcript. No lock is held across the session writes: two concurrent
 * follow-ups that both find the conversation ended create the next one under the same
 * idempotency key (chat + the conversation it follows), so they get one conversation; the one
 * whose message did not start it sends its message into it.
 */
export async function postFollowUp(m: Membership, chatId: string, text: string) {
  const chat = await requireChat(m, chatId);
  let conversation = chat.current_conversation_id ? await getSession(chat.current_conversation_id) : undefined;
  let event: EventRow | undefined;
  if (conversation && !isTerminal(conversation.status)) {
    try {
      ({ session: conversation, event } = await sendMessage(conversation, text));
    } catch (err) {
      // It ended between our read and the send: start a new one below.
      if (!isDomainError(err, 'conflict')) throw err;
    }
  }
  let newConversation = false;
  if (!event) {
    const history = await chats.messages(chat.id);
    const token = crypto.randomUUID();
    // The next conversation works on the same repository as the last one did.
    const previous = chat.current_conversation_id ? await getSession(chat.current_conversation_id) : undefined;
    conversation = await createSession(m, {
      agentRef: chat.agent_id, message: withHistory(history, text), triggerType: 'chat', chatSessionId: chat.id,
      repository: previous?.repository_id ?? null, baseBranch: previous?.repository_id ? previous.base_branch : null,
      idempotencyKey: `chat:${chat.id}:after:${chat.current_conversation_id ?? 'none'}`, data: { follow_up: token },
    });
    if (conversation.data?.follow_up === token) {
      event = await firstUserEvent(conversation.id);
      newConversation = true;
    } else {
      ({ session: conversation, event } = await sendMessage(conversation, text));
    }
    await chats.setCurrentConversation(chat.id, conversation.id);
  }
  const message = await insertHuman(chat, text, conversation!.id, event);
  return { message, conversation: conversation!, newConversation };
}

export async function listChatMessages(chatId: string, limit: number, offset: number) {
  await syncReplies(chatId);
  const { rows, total } = await chats.messagesPage(chatId, limit, offset);
  return { messages: rows.map(chatMessageView), total };
}

const isReply = (e: EventRow) =>
  e.event_type === 'message' && e.event_source === 'agent' && typeof e.payload?.message === 'string' && e.payload.message.trim() !== '';

/** Records agent replies (once each, by event id) and announces the ones this call inserted. */
async function recordReplies(session: { id: string; project_id: string; chat_session_id: string }, events: EventRow[]): Promise<void> {
  const replies = events.filter(isReply);
  if (!replies.length) return;
  const inserted = await chats.insertNewMessages(replies.map((e) => ({
    chat_session_id: session.chat_session_id, project_id: session.project_id, role: 'agent' as const,
    content: e.payload.message as string, conversation_id: session.id, event_id: e.id, created_at: e.created_at,
  })));
  for (const row of inserted) {
    await ports().dashboards.emit(session.project_id, 'agent:chat:reply', {
      message: row.content, session_id: row.chat_session_id, conversation_id: row.conversation_id, message_id: row.id,
    });
  }
}

/**
 * Hooks run after commit in the writing process; if that process died in between, a reply would
 * be missing. Reading the messages picks up any such reply from the durable event log.
 */
async function syncReplies(chatId: string): Promise<void> {
  const missing = await chats.unrecordedReplies(chatId);
  const bySession = new Map<string, EventRow[]>();
  for (const e of missing) bySession.set(e.session_id, [...(bySession.get(e.session_id) ?? []), e]);
  for (const [sessionId, events] of bySession) {
    await recordReplies({ id: sessionId, project_id: events[0].project_id, chat_session_id: chatId }, events);
  }
}

/** Pipeline listener: a chat conversation's agent messages become chat replies. */
export async function onChatConversationEvents(session: SessionRow, events: EventRow[]): Promise<void> {
  if (session.chat_session_id) await recordReplies({ id: session.id, project_id: session.project_id, chat_session_id: session.chat_session_id }, events);
}
