/** The forges Troupe speaks to, by name; the default API base URL of each. */
import { githubClient } from './github.js';
import type { ForgeClient, RepoCoordinates } from './types.js';

export { ForgeError, type ForgeClient, type PullRequest, type RepoCoordinates } from './types.js';

export const FORGES = ['github'] as const;
export type ForgeName = (typeof FORGES)[number];

export const DEFAULT_API_BASE_URL: Record<ForgeName, string> = { github: 'https://api.github.com' };

export function forgeClient(repo: RepoCoordinates, token: string): ForgeClient {
  if (repo.forge === 'github') return githubClient(repo, token);
  throw new Error(`unknown forge ${repo.forge}`);
}

/** owner/name from a clone URL's path (`https://github.com/owner/name(.git)`), or null when it has no such path. */
export function fullNameOf(cloneUrl: string): string | null {
  let u: URL;
  try {
    u = new URL(cloneUrl);
  } catch {
    return null;
  }
  const parts = u.pathname.replace(/\.git\/?$/, '').split('/').filter(Boolean);
  if (parts.length !== 2 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p) || p === '.' || p === '..')) return null;
  return parts.join('/');
}
