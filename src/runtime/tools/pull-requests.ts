/**
 * `create_pull_request {title, body}` (issue 14): offered to agents with can_create_prs whose
 * session works on a repository. The worker pushes the session's branch from the sandbox's
 * repository with the token (runtime/repos), then opens the pull request through the forge's API,
 * or, when the branch already has one, updates it: a second call never opens a duplicate.
 * The result records pr_url on the session and writes a durable `pr_created` event (Socket.IO
 * agent:conversation:pr_created, SSE pr_created; a task session also gets a task message).
 */
import * as repositories from '../../db/repositories/repositories.js';
import { getSession } from '../../db/session-store.js';
import { ForgeError, forgeClient, type PullRequest } from '../../lib/forges/index.js';
import { unseal } from '../../lib/secrets.js';
import { GitError, pushFromSandbox } from '../repos/workspace.js';
import { redact } from '../repos/git.js';
import type { ToolDefinition, ToolFamily } from './types.js';

const NAME = 'create_pull_request';

const DEFINITION: ToolDefinition = {
  name: NAME,
  description:
    "Push this session's branch and open a pull request for it (or update the one already open: title and body are replaced). " +
    'Commit your work with git first; only committed changes on the branch are pushed.',
  input_schema: {
    type: 'object',
    properties: { title: { type: 'string', description: 'Pull request title' }, body: { type: 'string', description: 'Pull request description (markdown)' } },
    required: ['title'],
  },
};

/** `offered`: the agent has can_create_prs and the session a repository; otherwise a call is refused. */
export function pullRequestTools(offered: boolean): ToolFamily {
  return {
    definitions: offered ? [DEFINITION] : [],
    has: (name) => name === NAME,
    async run(call, ctx) {
      if (!offered) return { content: 'create_pull_request is not available: the agent needs can_create_prs and the session a repository', is_error: true };
      const title = String(call.input.title ?? '').trim();
      const body = String(call.input.body ?? '');
      if (!title) return { content: 'create_pull_request needs a title', is_error: true };
      const s = (await getSession(ctx.session.id))!;
      const repo = s.repository_id ? await repositories.byId(s.repository_id) : undefined;
      if (!repo || !s.branch_name || !s.base_branch) return { content: 'This session has no repository branch to open a pull request from', is_error: true };
      if (!repo.token_sealed) return { content: `Repository ${repo.name} has no token any more; ask a project member to set one`, is_error: true };
      const token = unseal(repo.token_sealed);
      try {
        const sha = await pushFromSandbox({ driver: ctx.driver, containerId: ctx.containerId, dirName: repo.name, remote: { url: repo.clone_url, token }, branch: s.branch_name, signal: ctx.killSignal });
        const forge = forgeClient(repo, token);
        let existing: PullRequest | null = null;
        if (s.pr_number) existing = await forge.getPull(s.pr_number).catch(() => null);
        if (!existing || existing.state !== 'open') existing = await forge.findOpenPull(s.branch_name);
        const pr = existing
          ? await forge.updatePull(existing.number, { title, body })
          : await forge.createPull({ title, body, head: s.branch_name, base: s.base_branch });
        const action = existing ? 'updated' : 'created';
        return {
          content: `Pull request #${pr.number} ${action}: ${pr.url} (${s.branch_name} at ${sha.slice(0, 12)} into ${s.base_branch})`,
          is_error: false,
          patch: { pr_url: pr.url, pr_number: pr.number },
          events: [{
            event_type: 'pr_created', event_source: 'environment',
            payload: {
              action, pr_url: pr.url, pr_number: pr.number, title, branch_name: s.branch_name, base_branch: s.base_branch,
              head_sha: sha, repository_id: repo.id, repository: repo.full_name, task_id: s.task_id, tool_use_id: call.id,
            },
          }],
        };
      } catch (err) {
        if (err instanceof GitError || err instanceof ForgeError) return { content: redact(`Could not open the pull request: ${err.message}`, token), is_error: true };
        throw err;
      }
    },
  };
}
