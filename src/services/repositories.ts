/**
 * A project's repositories (issue 14): where its agents clone from and open pull requests.
 *
 * The access token is write-only: sealed at once, never returned, logged or put in an event
 * (responses say `has_token`). It is checked with the forge when given (a token the forge refuses
 * is a 422 and nothing is stored). Changing where the token goes — the clone URL, the API base URL
 * or the forge — clears the stored token unless the same request supplies it again, as for an
 * agent's model key; the response lists what was cleared in `secrets_cleared`.
 */
import { db } from '../db/knex.js';
import * as repos from '../db/repositories/repositories.js';
import type { Forge, RepositoryChanges, RepositoryRow } from '../db/repositories/repositories.js';
import type { Principal } from '../domain/principal.js';
import { badRequest, conflict, forbidden, notFound, unprocessable } from '../domain/errors.js';
import { DEFAULT_API_BASE_URL, ForgeError, forgeClient, fullNameOf } from '../lib/forges/index.js';
import { blockedCause, outbound } from '../lib/outbound.js';
import { seal, unseal } from '../lib/secrets.js';
import { isUuid, requireProject } from './access.js';
import { sameUrl } from './agents.js';

export type { RepositoryRow };

export interface RepositoryInput {
  name?: string;
  clone_url?: string;
  default_branch?: string;
  forge?: Forge;
  api_base_url?: string | null;
  /** Write-only: checked with the forge, sealed, never returned. */
  token?: string;
}

export function repositoryView(r: RepositoryRow) {
  return {
    id: r.id,
    project_id: r.project_id,
    name: r.name,
    clone_url: r.clone_url,
    default_branch: r.default_branch,
    forge: r.forge,
    api_base_url: r.api_base_url,
    full_name: r.full_name,
    has_token: Boolean(r.token_sealed),
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** A git ref name Troupe accepts for a branch (git check-ref-format, conservatively). */
export const BRANCH_RE = /^(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!\/)(?!.*\/$)(?!.*\.lock$)(?!-)[A-Za-z0-9._/-]{1,200}$/;

export function assertBranch(branch: string, field: string): void {
  if (!BRANCH_RE.test(branch) || branch.endsWith('.') || branch.includes('/.')) throw badRequest(`${field} "${branch}" is not a valid branch name`);
}

/** A clone URL Troupe will fetch from: http(s), no credentials in it, an owner/name path. */
function checkCloneUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badRequest(`clone_url "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw badRequest('clone_url must be an https (or http) URL; ssh and file URLs are not supported');
  if (u.username || u.password) throw badRequest('clone_url must not hold credentials: give the token in `token`');
  if (u.search || u.hash) throw badRequest('clone_url must not have a query or fragment');
  const fullName = fullNameOf(url);
  if (!fullName) throw badRequest(`clone_url "${url}" must name a repository as https://host/owner/name(.git)`);
  return fullName;
}

function checkApiUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badRequest(`api_base_url "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw badRequest('api_base_url must be an https (or http) URL');
  if (u.username || u.password || u.search || u.hash) throw badRequest('api_base_url must not hold credentials, a query or a fragment');
}

/**
 * Asks the forge whether the token can see the repository; a refusal is a 422 that says why.
 * Also checks the clone URL passes the outbound guard (the worker will fetch from it).
 */
async function verifyWithForge(r: Pick<RepositoryRow, 'forge' | 'api_base_url' | 'full_name' | 'clone_url'>, token: string) {
  for (const [field, url] of [['clone_url', r.clone_url], ['api_base_url', r.api_base_url]] as const) {
    try {
      await outbound().check(url, 'forge');
    } catch (err) {
      const blocked = blockedCause(err);
      throw unprocessable(`${field} is not reachable from this server: ${blocked ? blocked.message : (err as Error).message}`);
    }
  }
  try {
    return await forgeClient(r, token).verify();
  } catch (err) {
    if (!(err instanceof ForgeError)) throw err;
    if (err.status === 401) throw unprocessable(`The forge rejected the token (401): ${err.message}`);
    if (err.status === 403) throw unprocessable(`The forge refused the token access to ${r.full_name} (403): ${err.message}`);
    if (err.status === 404) throw unprocessable(`The forge has no repository ${r.full_name} that this token can see (404)`);
    throw unprocessable(`Could not check the token with the forge: ${err.message}`);
  }
}

export async function listRepositories(principal: Principal, projectId: string) {
  await requireProject(principal, projectId, 'read');
  return (await repos.ofProject(projectId)).map(repositoryView);
}

export async function requireRepository(projectId: string, ref: string): Promise<RepositoryRow> {
  const r = await repos.inProject(projectId, isUuid(ref) ? { id: ref } : { name: ref });
  if (!r) throw notFound('Repository');
  return r;
}

export async function getRepository(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'read');
  return repositoryView(await requireRepository(projectId, ref));
}

export async function createRepository(principal: Principal, projectId: string, input: RepositoryInput & { name: string; clone_url: string; token: string }) {
  await requireProject(principal, projectId, 'manage');
  const forge = input.forge ?? 'github';
  const fullName = checkCloneUrl(input.clone_url);
  const apiBaseUrl = input.api_base_url ?? DEFAULT_API_BASE_URL[forge];
  checkApiUrl(apiBaseUrl);
  if (input.default_branch) assertBranch(input.default_branch, 'default_branch');
  if (await repos.inProject(projectId, { name: input.name })) throw conflict(`A repository named "${input.name}" already exists in this project`);
  const coords = { forge, api_base_url: apiBaseUrl, full_name: fullName, clone_url: input.clone_url };
  const info = await verifyWithForge(coords, input.token);
  const row = await repos.insert({
    project_id: projectId, name: input.name, ...coords,
    default_branch: input.default_branch ?? info.default_branch ?? 'main',
    token_sealed: seal(input.token),
  }).catch((err) => {
    if (err.code === '23505') throw conflict(`A repository named "${input.name}" already exists in this project`);
    throw err;
  });
  return repositoryView(row);
}

export async function updateRepository(principal: Principal, projectId: string, ref: string, input: RepositoryInput) {
  await requireProject(principal, projectId, 'manage');
  const r = await requireRepository(projectId, ref);
  const cols: RepositoryChanges = {};
  if (input.name !== undefined && input.name !== r.name) {
    if (await repos.inProject(projectId, { name: input.name })) throw conflict(`A repository named "${input.name}" already exists in this project`);
    cols.name = input.name;
  }
  if (input.clone_url !== undefined) {
    cols.clone_url = input.clone_url;
    cols.full_name = checkCloneUrl(input.clone_url);
  }
  if (input.forge !== undefined) cols.forge = input.forge;
  if (input.api_base_url !== undefined) {
    cols.api_base_url = input.api_base_url ?? DEFAULT_API_BASE_URL[input.forge ?? r.forge];
    checkApiUrl(cols.api_base_url);
  }
  if (input.default_branch !== undefined) {
    assertBranch(input.default_branch, 'default_branch');
    cols.default_branch = input.default_branch;
  }
  // A new token, or the stored one going to the same place, is checked before anything is written.
  const next = { ...r, ...cols };
  const destinationChanged = !sameUrl(next.clone_url, r.clone_url) || !sameUrl(next.api_base_url, r.api_base_url) || next.forge !== r.forge;
  if (input.token !== undefined) {
    await verifyWithForge(next, input.token);
    cols.token_sealed = seal(input.token);
  }
  const cleared = await db.transaction(async (tx) => {
    // Decide on the row as it is now, so a concurrent change of destination cannot slip between.
    const cur = (await repos.byIdForUpdate(r.id, tx))!;
    const moved = !sameUrl(next.clone_url, cur.clone_url) || !sameUrl(next.api_base_url, cur.api_base_url) || next.forge !== cur.forge;
    const out: string[] = [];
    if ((moved || destinationChanged) && input.token === undefined && cur.token_sealed) {
      cols.token_sealed = null;
      out.push('token');
    }
    await repos.update(r.id, cols, tx).catch((err) => {
      if (err.code === '23505') throw conflict(`A repository named "${input.name}" already exists in this project`);
      throw err;
    });
    return out;
  });
  return { ...repositoryView((await repos.byId(r.id))!), secrets_cleared: cleared };
}

export async function deleteRepository(principal: Principal, projectId: string, ref: string) {
  await requireProject(principal, projectId, 'manage');
  const r = await requireRepository(projectId, ref);
  await repos.remove(r.id);
  return { id: r.id, deleted: true };
}

/**
 * The repository a new session or task names (id or name), for an agent allowed to clone: 400
 * for an unknown one, 403 when the agent lacks can_clone_repos, 409 when it has no token.
 */
export async function repositoryForWork(
  projectId: string,
  agent: { handle: string; can_clone_repos: boolean },
  ref: string,
  baseBranch: string | null | undefined,
): Promise<{ repository: RepositoryRow; baseBranch: string }> {
  if (!agent.can_clone_repos) throw forbiddenClone(agent.handle);
  const r = await repos.inProject(projectId, isUuid(ref) ? { id: ref } : { name: ref });
  if (!r) throw badRequest(`Unknown repository "${ref}" in this project: list them with GET /api/v1/projects/${projectId}/repositories`);
  if (!r.token_sealed) throw conflict(`Repository "${r.name}" has no token (it was cleared when its URL changed): set one with PATCH .../repositories/${r.id}`);
  const base = baseBranch ?? r.default_branch;
  assertBranch(base, 'base_branch');
  return { repository: r, baseBranch: base };
}

const forbiddenClone = (handle: string) =>
  forbidden(`Agent "${handle}" may not work on repositories: set can_clone_repos to true on the agent first`);

/** The stored token, unsealed, for the worker. */
export function tokenOf(r: RepositoryRow): string | null {
  return r.token_sealed ? unseal(r.token_sealed) : null;
}
