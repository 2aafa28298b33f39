/**
 * Chat sessions and their messages (seed 004). A message is keyed by the session event it
 * records (event_id, unique), so a human turn or an agent reply is recorded once whoever races.
 * Messages sort by (created_at, seq): a human turn carries its session event's time.
 */
import type { EventRow, SessionStatus } from '../../domain/sessions.js';
import { db } from '../knex.js';

export interface ChatRow {
  id: string;
  project_id: string;
  agent_id: string;
  /** The project member whose chat it is (no one else sees it). */
  member_id: string;
  title: string;
  current_conversation_id: string | null;
  created_at: Date;
  updated_at: Date;
}

/** A chat with its current conversation's status and message stats. */
export interface ChatWithStats extends ChatRow {
  conversation_status: SessionStatus | null;
  message_count: number;
  last_message_at: Date | null;
}

export type ChatRole = 'user' | 'agent';

export interface ChatMessageRow {
  id: string;
  /** bigserial tie-breaker within one created_at (node-postgres returns it as a string). */
  seq: string;
  chat_session_id: string;
  project_id: string;
  role: ChatRole;
  content: string;
  conversation_id: string | null;
  event_id: string | null;
  created_at: Date;
}

export type NewChatMessage = Omit<ChatMessageRow, 'id' | 'seq' | 'created_at'> & { created_at: Date | string };

function withStats() {
  return db('chat_sessions as c')
    .leftJoin('sessions as s', 's.id', 'c.current_conversation_id')
    .select(
      'c.*',
      's.status as conversation_status',
      db.raw('(select count(*)::int from chat_messages m where m.chat_session_id = c.id) as message_count'),
      db.raw('(select max(m.created_at) from chat_messages m where m.chat_session_id = c.id) as last_message_at'),
    );
}

export async function insert(row: Pick<ChatRow, 'project_id' | 'agent_id' | 'member_id' | 'title'>): Promise<ChatRow> {
  const [chat] = await db('chat_sessions').insert(row).returning('*');
  return chat;
}

export async function remove(id: string): Promise<void> {
  await db('chat_sessions').where({ id }).del();
}

export async function setCurrentConversation(id: string, conversationId: string): Promise<void> {
  await db('chat_sessions').where({ id }).update({ current_conversation_id: conversationId, updated_at: db.fn.now() });
}

/** The chat if it belongs to this member of this project. */
export async function ofMember(id: string, projectId: string, memberId: string): Promise<ChatRow | undefined> {
  return db('chat_sessions').where({ id, project_id: projectId, member_id: memberId }).first();
}

export async function byIdWithStats(id: string): Promise<ChatWithStats | undefined> {
  return withStats().where('c.id', id).first();
}

/** A member's chats with one agent, newest first, and how many there are in all. */
export async function listWithStats(
  owner: { projectId: string; agentId: string; memberId: string },
  page: { limit: number; offset: number },
): Promise<{ rows: ChatWithStats[]; total: number }> {
  const base = withStats().where({ 'c.project_id': owner.projectId, 'c.agent_id': owner.agentId, 'c.member_id': owner.memberId });
  const [{ count }] = await base.clone().clearSelect().count<{ count: string }[]>('c.id as count');
  const rows: ChatWithStats[] = await base.orderBy('c.created_at', 'desc').limit(page.limit).offset(page.offset);
  return { rows, total: Number(count) };
}

export async function insertMessage(m: NewChatMessage): Promise<ChatMessageRow> {
  const [row] = await db('chat_messages').insert(m).returning('*');
  return row;
}

/** Inserts the messages whose event is not recorded yet; returns the ones this call inserted. */
export async function insertNewMessages(ms: NewChatMessage[]): Promise<ChatMessageRow[]> {
  return db('chat_messages').insert(ms).onConflict('event_id').ignore().returning('*');
}

/** All of a chat's messages, oldest first. */
export async function messages(chatId: string): Promise<ChatMessageRow[]> {
  return db('chat_messages').where({ chat_session_id: chatId }).orderBy([{ column: 'created_at' }, { column: 'seq' }]);
}

export async function messagesPage(chatId: string, limit: number, offset: number): Promise<{ rows: ChatMessageRow[]; total: number }> {
  const base = db('chat_messages').where({ chat_session_id: chatId });
  const [{ count }] = await base.clone().count<{ count: string }[]>('* as count');
  const rows: ChatMessageRow[] = await base.clone().orderBy([{ column: 'created_at' }, { column: 'seq' }]).limit(limit).offset(offset);
  return { rows, total: Number(count) };
}

/** Non-empty agent messages of the chat's conversations that no chat message records yet. */
export async function unrecordedReplies(chatId: string): Promise<EventRow[]> {
  return db('session_events as e')
    .join('sessions as s', 's.id', 'e.session_id')
    .where({ 's.chat_session_id': chatId, 'e.event_type': 'message', 'e.event_source': 'agent' })
    .whereRaw("btrim(coalesce(e.payload->>'message', '')) <> ''")
    .whereNotExists(db('chat_messages as m').whereRaw('m.event_id = e.id'))
    .select('e.*', 's.chat_session_id');
}
