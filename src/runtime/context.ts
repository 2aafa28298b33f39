/**
 * Reads a session's durable event log back into what the actor needs: the model's message
 * history, the tool calls still waiting for a result, and whether the model owes an answer.
 * The log is the only state, so any worker can pick a session up from it after a crash.
 */
import type { EventRow } from '../db/session-store.js';
import type { ChatMessage, ContentBlock } from './providers/types.js';

export interface PendingTool {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export function pendingToolUses(events: EventRow[]): PendingTool[] {
  const done = new Set(events.filter((e) => e.event_type === 'tool_result').map((e) => String(e.payload.tool_use_id)));
  return events
    .filter((e) => e.event_type === 'tool_use' && !done.has(String(e.payload.id)))
    .map((e) => ({ id: String(e.payload.id), name: String(e.payload.name), input: (e.payload.input ?? {}) as Record<string, unknown> }));
}

/**
 * Tool calls still waiting for a result, split by what this activation may do with them. Calls
 * run one at a time, in order, each result recorded before the next starts; so of the calls an
 * earlier activation left (it crashed, or was paused mid-tool), only the first may have started.
 * Unless the agent opted into re-runs, that one is not run again: it gets a result saying so,
 * and the model decides. The calls this activation recorded itself, and the rest, run normally.
 */
export function splitInterrupted(pending: PendingTool[], ownToolUses: ReadonlySet<string>, rerun: boolean): { interrupted?: PendingTool; run: PendingTool[] } {
  const first = pending[0];
  if (!first || rerun || ownToolUses.has(first.id)) return { run: pending };
  return { interrupted: first, run: pending.slice(1) };
}

/** The durable result for a call cut short and not re-run. */
export function interruptedResult(call: PendingTool) {
  return {
    tool_use_id: call.id,
    name: call.name,
    content: `The ${call.name} call was interrupted before it reported a result (the session was paused or its worker stopped), and it was not run again. It may have run partly or to the end: check its effects before repeating it.`,
    is_error: true,
    interrupted: true,
  };
}

export interface SessionState {
  messages: ChatMessage[];
  pending: PendingTool[];
  /** True when a user message or tool result came after the model's last answer. */
  needsModel: boolean;
  /** Model calls completed so far (the scripted provider's turn index). */
  assistantTurns: number;
  userTexts: string[];
}

export function readState(events: EventRow[]): SessionState {
  const messages: ChatMessage[] = [];
  const push = (role: 'user' | 'assistant', block: ContentBlock) => {
    const last = messages[messages.length - 1];
    if (last && last.role === role) last.content.push(block);
    else messages.push({ role, content: [block] });
  };
  // A model call records how far into the log it read (context_index). A user message that
  // arrived while the model was answering was not seen by that call: it still needs an answer,
  // and belongs after that answer in the history.
  let lastAnswered = -1;
  for (const e of events) {
    if (e.event_type === 'message' && (e.payload as Record<string, any>).role === 'assistant') {
      const c = (e.payload as Record<string, any>).context_index;
      lastAnswered = Math.max(lastAnswered, typeof c === 'number' ? c : e.event_index);
    }
  }
  let deferred: ContentBlock[] = [];
  let assistantTurns = 0;
  const userTexts: string[] = [];
  events.forEach((e, i) => {
    const p = e.payload as Record<string, any>;
    if (e.event_type === 'message' && p.role === 'assistant') {
      assistantTurns++;
      // Each model call starts a new assistant message, even when the previous one had no tools.
      messages.push({ role: 'assistant', content: p.message ? [{ type: 'text', text: String(p.message) }] : [] });
    } else if (e.event_type === 'message') {
      userTexts.push(String(p.message ?? ''));
      // Sent during a model call that recorded after it: place it after that call's turn.
      const laterAnswer = events.slice(i + 1).find((x) => x.event_type === 'message' && (x.payload as Record<string, any>).role === 'assistant');
      const ctx = laterAnswer ? (laterAnswer.payload as Record<string, any>).context_index : undefined;
      if (typeof ctx === 'number' && ctx < e.event_index) deferred.push(...userBlocks(p));
      else for (const b of userBlocks(p)) push('user', b);
    } else if (e.event_type === 'tool_use') {
      push('assistant', { type: 'tool_use', id: String(p.id), name: String(p.name), input: p.input ?? {} });
    } else if (e.event_type === 'tool_result') {
      push('user', { type: 'tool_result', tool_use_id: String(p.tool_use_id), content: String(p.content ?? ''), is_error: Boolean(p.is_error) });
    }
    const next = events[i + 1];
    const turnOver = !next || (next.event_type !== 'tool_use' && !(next.event_type === 'message' && (next.payload as Record<string, any>).role === 'assistant'));
    if (deferred.length && messages[messages.length - 1]?.role === 'assistant' && turnOver) {
      for (const b of deferred) push('user', b);
      deferred = [];
    }
  });
  for (const b of deferred) push('user', b);
  const needsModel = events.some((e) => e.event_index > lastAnswered && (e.event_type === 'tool_result' || (e.event_type === 'message' && (e.payload as Record<string, any>).role !== 'assistant')));
  // Providers want tool results first in a user turn, and no empty assistant turns.
  const cleaned = messages
    .map((m) => (m.role === 'user' ? { ...m, content: [...m.content].sort((a, b) => rank(a) - rank(b)) } : m))
    .filter((m) => m.content.length > 0);
  return { messages: mergeAdjacent(cleaned), pending: pendingToolUses(events), needsModel, assistantTurns, userTexts };
}

function userBlocks(p: Record<string, any>): ContentBlock[] {
  if (Array.isArray(p.content) && p.content.length) return p.content as ContentBlock[];
  return [{ type: 'text', text: String(p.message ?? '') }];
}

const rank = (b: ContentBlock) => (b.type === 'tool_result' ? 0 : 1);

function mergeAdjacent(messages: ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    const last = out[out.length - 1];
    if (last && last.role === m.role) last.content.push(...m.content);
    else out.push({ role: m.role, content: [...m.content] });
  }
  return out.map((m) => (m.role === 'user' ? { ...m, content: m.content.sort((a, b) => rank(a) - rank(b)) } : m));
}

/**
 * Seed 002's message view: consecutive events of one speaker become one message of content
 * blocks. Tool results are reported in a user-role message, as the Anthropic API does.
 */
export function messagesView(sessionId: string, events: EventRow[]) {
  const out: Array<{ id: string; session_id: string; role: 'user' | 'assistant'; content: ContentBlock[]; timestamp: string | Date }> = [];
  let last: (typeof out)[number] | undefined;
  const add = (e: EventRow, role: 'user' | 'assistant', block: ContentBlock, fresh = false) => {
    if (!last || last.role !== role || fresh) {
      last = { id: e.id, session_id: sessionId, role, content: [], timestamp: e.created_at };
      out.push(last);
    }
    last.content.push(block);
  };
  for (const e of events) {
    const p = e.payload as Record<string, any>;
    if (e.event_type === 'message' && p.role === 'assistant') {
      if (p.message) add(e, 'assistant', { type: 'text', text: String(p.message) }, true);
      else last = undefined;
    } else if (e.event_type === 'message') {
      for (const b of userBlocks(p)) add(e, 'user', b);
    } else if (e.event_type === 'tool_use') {
      add(e, 'assistant', { type: 'tool_use', id: String(p.id), name: String(p.name), input: p.input ?? {} });
    } else if (e.event_type === 'tool_result') {
      add(e, 'user', { type: 'tool_result', tool_use_id: String(p.tool_use_id), content: String(p.content ?? ''), is_error: Boolean(p.is_error) });
    }
  }
  return out;
}
