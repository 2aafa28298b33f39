/**
 * Before a session's first model call: when it names a repository, clone it into the sandbox on a
 * branch of its own (`agent/<slug of the task title or first message>`, unique per conversation).
 * A failure ends the session's start with an error that says why (token redacted).
 */
import * as chats from '../../db/repositories/chats.js';
import * as repositories from '../../db/repositories/repositories.js';
import { loadEvents, type SessionRow } from '../../db/session-store.js';
import { unseal } from '../../lib/secrets.js';
import type { SandboxDriver } from '../sandbox/driver.js';
import { redact } from './git.js';
import { branchFor, cloneIntoSandbox, GitError } from './workspace.js';

/** The session's repository could not be prepared; the message is safe to show. */
export class RepositoryStartError extends Error {
  override name = 'RepositoryStartError';
}

export interface CloningAgent {
  name: string;
  handle: string;
  can_clone_repos: boolean;
}

/** What the work is called: the task's title, the chat's (its first message), or the first message. */
async function workTitle(session: SessionRow): Promise<string> {
  if (session.task_title) return session.task_title;
  if (session.chat_session_id) {
    const chat = await chats.byIdWithStats(session.chat_session_id);
    if (chat?.title) return chat.title;
  }
  const first = (await loadEvents(session.id, { limit: 20 })).find((e) => e.event_type === 'message' && e.event_source === 'user');
  return String(first?.payload.message ?? session.prompt ?? '');
}

/** Clones the session's repository into its sandbox; the branch made for it. */
export async function cloneForSession(session: SessionRow, agent: CloningAgent, driver: SandboxDriver, containerId: string, signal?: AbortSignal): Promise<string> {
  const repo = session.repository_id ? await repositories.byId(session.repository_id) : undefined;
  if (!repo) throw new RepositoryStartError('The repository this session names was removed from the project');
  if (!agent.can_clone_repos) throw new RepositoryStartError(`Agent "${agent.handle}" may no longer clone repositories (can_clone_repos is off)`);
  if (!repo.token_sealed) throw new RepositoryStartError(`Repository ${repo.name} has no token (it was cleared when its URL changed)`);
  const token = unseal(repo.token_sealed);
  const wanted = branchFor(await workTitle(session));
  try {
    return await cloneIntoSandbox({
      driver, containerId, dirName: repo.name, remote: { url: repo.clone_url, token },
      baseBranch: session.base_branch ?? repo.default_branch, branch: wanted,
      taken: (b) => repositories.branchTaken(repo.id, b, session.id),
      author: { name: agent.name, email: `${agent.handle}@agents.troupe.invalid` },
      signal,
    });
  } catch (err) {
    const why = err instanceof GitError ? err.message : `the sandbox refused the copy: ${(err as Error).message}`;
    throw new RepositoryStartError(redact(`Could not clone repository ${repo.name} (${repo.clone_url}, branch ${session.base_branch ?? repo.default_branch}): ${why}`, token));
  }
}
