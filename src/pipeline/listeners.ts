/**
 * Who reacts to what: every listener of the event pipeline, in one list, registered when a
 * process starts (src/wiring.ts). Adding a feature that reacts to sessions means adding a line
 * here, not importing a module for its side effects.
 */
import { publishAgentEvent, publishEvents } from '../realtime/bus.js';
import { enqueueWebhook } from '../runtime/webhooks.js';
import { onChatConversationEvents } from '../services/chat.js';
import { onPairRoundEvents } from '../services/pairs.js';
import { onTaskSessionEvents } from '../services/tasks.js';
import type { EventPipeline } from './pipeline.js';

export function registerListeners(pipeline: EventPipeline): EventPipeline {
  return pipeline
    // Transports (inline, right after commit): SSE, Socket.IO and /ws clients on every replica.
    .onSessionEvents({ name: 'realtime', mode: 'inline', handle: (_session, events) => publishEvents(events) })
    .onAgentEvent({ name: 'realtime', handle: publishAgentEvent })
    .onAgentEvent({ name: 'webhooks', handle: async (d) => (d.hasWebhook ? enqueueWebhook(d.cursor) : undefined) })
    // Feature reactions (queued, in order per session, retried).
    .onSessionEvents({ name: 'chat-replies', mode: 'queued', wants: (s) => s.chat_session_id !== null, handle: onChatConversationEvents })
    .onSessionEvents({ name: 'task-status', mode: 'queued', wants: (s) => s.trigger_type === 'task_assigned', handle: onTaskSessionEvents })
    .onSessionEvents({ name: 'pair-rounds', mode: 'queued', wants: (s) => s.trigger_type === 'pair', handle: onPairRoundEvents });
}
