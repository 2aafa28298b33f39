/**
 * Who may see (read, stream, steer) one session. On top of project membership and an agent key's
 * own-agent rule (services/access.ts): a chat's conversations belong to the member whose chat it
 * is (sessions.chat_session_id → chat_sessions.member_id). The project's owners and admins may
 * see them too; any other member gets 404, as for another project's session. Every route that
 * takes one session, the SSE stream, the Socket.IO subscribe and the realtime rechecks call this,
 * so the rule is in one place.
 */
import * as chats from '../db/repositories/chats.js';
import type { SessionRow } from '../db/session-store.js';
import { notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { membershipOf, ownSession } from './access.js';
import { requireSession } from './sessions.js';
import type { SessionViewFilter } from '../db/repositories/session-views.js';

/** Whether `principal` may see session `s` (membership of its project included). */
export async function maySeeSession(principal: Principal, s: Pick<SessionRow, 'project_id' | 'agent_id' | 'chat_session_id'>): Promise<boolean> {
  const m = await membershipOf(principal, s.project_id);
  if (!m) return false;
  if (principal.kind === 'agent') return s.agent_id === principal.agentId;
  if (!s.chat_session_id || m.role === 'owner' || m.role === 'admin') return true;
  return Boolean(await chats.ofMember(s.chat_session_id, s.project_id, m.memberId));
}

/**
 * The same rule for lists: which chat conversations among `projectIds` the principal may see, as
 * a filter for session-views. Agent keys get none (their own-agent rule already applies).
 */
export async function chatVisibility(principal: Principal, projectIds: string[]): Promise<SessionViewFilter['chats']> {
  if (principal.kind !== 'user') return undefined;
  const seeAllIn: string[] = [];
  const memberIds: string[] = [];
  for (const p of projectIds) {
    const m = await membershipOf(principal, p);
    if (!m) continue;
    if (m.role === 'owner' || m.role === 'admin') seeAllIn.push(p);
    else memberIds.push(m.memberId);
  }
  return { seeAllIn, memberIds };
}

/** The session `id` among `projectIds`, if the caller may see it; 404 otherwise. */
export async function requireVisibleSession(principal: Principal, projectIds: string[], id: string, what = 'Session'): Promise<SessionRow> {
  const s = ownSession(principal, await requireSession(projectIds, id), what);
  if (s.chat_session_id && principal.kind === 'user' && !(await maySeeSession(principal, s))) throw notFound(what);
  return s;
}
