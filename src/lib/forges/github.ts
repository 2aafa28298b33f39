/**
 * The GitHub forge, through the official client (@octokit/rest). Every request goes through the
 * outbound guard (purpose `forge`) and follows no redirect, so the token is only ever sent to the
 * API base URL the repository names. Used by the api (checking a token when a repository is
 * added) and by the worker (opening and updating pull requests); it touches no container.
 */
import { Octokit } from '@octokit/rest';
import { blockedCause, outbound } from '../outbound.js';
import { ForgeError, type ForgeClient, type PullRequest, type RepoCoordinates } from './types.js';

export function githubClient(repo: RepoCoordinates, token: string): ForgeClient {
  const guarded = outbound().fetch('forge');
  // Octokit turns a failed fetch into a "500"; the real cause (e.g. the guard's refusal) is kept here.
  const net: { failure: unknown } = { failure: null };
  const octokit = new Octokit({
    auth: token,
    baseUrl: repo.api_base_url.replace(/\/+$/, ''),
    userAgent: 'troupe',
    request: {
      // A redirect would carry the token elsewhere: refused.
      fetch: (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        try {
          return await guarded(input, { ...init, redirect: 'error' });
        } catch (err) {
          net.failure = err;
          throw err;
        }
      }) as typeof fetch,
      retries: 0,
    },
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  const [owner, name] = repo.full_name.split('/');
  const pull = (p: { number: number; html_url: string; state: string; head: { ref: string }; base: { ref: string } }): PullRequest =>
    ({ number: p.number, url: p.html_url, state: p.state, head: p.head.ref, base: p.base.ref });

  return {
    async verify() {
      const { data } = await call(net, () => octokit.rest.repos.get({ owner, repo: name }));
      return { default_branch: data.default_branch, can_push: data.permissions ? Boolean(data.permissions.push) : null };
    },
    async findOpenPull(head) {
      const { data } = await call(net, () => octokit.rest.pulls.list({ owner, repo: name, head: `${owner}:${head}`, state: 'open', per_page: 10 }));
      const found = data.find((p) => p.head.ref === head);
      return found ? pull(found) : null;
    },
    async getPull(number) {
      const { data } = await call(net, () => octokit.rest.pulls.get({ owner, repo: name, pull_number: number }));
      return pull(data);
    },
    async createPull(input) {
      const { data } = await call(net, () => octokit.rest.pulls.create({ owner, repo: name, ...input }));
      return pull(data);
    },
    async updatePull(number, input) {
      const { data } = await call(net, () => octokit.rest.pulls.update({ owner, repo: name, pull_number: number, ...input }));
      return pull(data);
    },
  };
}

/** Runs one API call; failures become ForgeErrors whose messages never hold the token. */
async function call<T>(net: { failure: unknown }, fn: () => Promise<T>): Promise<T> {
  net.failure = null;
  try {
    return await fn();
  } catch (err) {
    if (net.failure) {
      const blocked = blockedCause(net.failure);
      const cause = (net.failure as { cause?: { message?: string } }).cause?.message ?? (net.failure as Error).message;
      throw new ForgeError(blocked ? `the forge API is not allowed: ${blocked.message}` : `the forge API could not be reached: ${cause}`, null);
    }
    const e = err as { status?: number; message?: string; response?: { data?: { message?: string; errors?: Array<{ message?: string }> } } };
    const status = typeof e.status === 'number' && e.status >= 100 ? e.status : null;
    const detail = e.response?.data?.errors?.map((x) => x.message).filter(Boolean).join('; ');
    const message = [e.response?.data?.message ?? e.message ?? 'request failed', detail].filter(Boolean).join(': ');
    throw new ForgeError(status ? `the forge answered ${status}: ${message}` : `the forge API could not be reached: ${message}`, status);
  }
}
