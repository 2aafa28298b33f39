/** Seed 004 chat sessions: a member's chat with an agent, spanning conversations (services/chat.ts). */
import { defineRoute } from '../registry.js';
import { nonEmpty, obj, pagination, repositoryFields } from '../schema.js';
import { assertActsAsSelf, requireProject } from '../../services/access.js';
import { chatMessageView, chatView, listChatMessages, listChats, postFollowUp, requireChat, startChat } from '../../services/chat.js';
import { conversationView, withViewData } from '../../services/session-views.js';

const P = '/api/v1/projects/:projectId';
const TAG = 'Chat sessions (004)';
export const chatMessageBody = obj({ message: nonEmpty(100_000) }, ['message']);
export const startChatBody = obj({ message: nonEmpty(100_000), ...repositoryFields }, ['message']);

defineRoute({
  method: 'get', path: `${P}/agents/:agentId/chat-sessions`, tag: TAG, summary: "The calling member's chat sessions with an agent, newest first",
  query: obj({ ...pagination }),
  handler: async (_ctx, { principal, params, query }) => {
    const m = await requireProject(principal, params.projectId, 'read');
    return listChats(m, params.agentId, query);
  },
});

defineRoute({
  method: 'post', path: `${P}/agents/:agentId/chat-sessions`, tag: TAG,
  summary: 'Start a chat session: its first conversation (trigger_type chat) is queued with the message',
  body: startChatBody, status: 201, idempotent: true, limit: 'session',
  handler: async (_ctx, { principal, params, body }) => {
    const m = await requireProject(principal, params.projectId, 'write');
    await assertActsAsSelf(principal, params.agentId); // an agent key never starts another agent's conversations
    const { chat, conversation } = await startChat(m, params.agentId, body.message, { repository: body.repository, baseBranch: body.base_branch });
    return { ...chatView(chat), conversation: conversationView(await withViewData(conversation)) };
  },
});

defineRoute({
  method: 'post', path: `${P}/chat-sessions/:sessionId/messages`, tag: TAG,
  summary: "Follow-up: to the chat's current conversation, or (once it has ended) to a new one that starts with the chat's history",
  body: chatMessageBody, status: 201, idempotent: true, limit: 'session',
  handler: async (_ctx, { principal, params, body }) => {
    const m = await requireProject(principal, params.projectId, 'write');
    const { message, conversation, newConversation } = await postFollowUp(m, params.sessionId, body.message);
    return { ...chatMessageView(message), new_conversation: newConversation, conversation: conversationView(await withViewData(conversation)) };
  },
});

defineRoute({
  method: 'get', path: `${P}/chat-sessions/:sessionId/messages`, tag: TAG, summary: 'Human turns and agent replies, oldest first',
  query: obj({ ...pagination, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } }),
  handler: async (_ctx, { principal, params, query }) => {
    const m = await requireProject(principal, params.projectId, 'read');
    const chat = await requireChat(m, params.sessionId);
    return listChatMessages(chat.id, query.limit, query.offset);
  },
});
