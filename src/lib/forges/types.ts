/**
 * What Troupe needs of a forge (GitHub now; GitLab and Gitea fit the same shape): check a token
 * against a repository, and open, find and update the pull request of a branch.
 */
export interface RepoCoordinates {
  forge: string;
  api_base_url: string;
  /** owner/name */
  full_name: string;
}

export interface PullRequest {
  number: number;
  /** The page a person opens (html_url on GitHub). */
  url: string;
  state: string;
  head: string;
  base: string;
}

export interface ForgeClient {
  /** Reads the repository with the token: throws ForgeError (status 401/403/404) when the forge refuses. */
  verify(): Promise<{ default_branch: string; can_push: boolean | null }>;
  findOpenPull(head: string): Promise<PullRequest | null>;
  getPull(number: number): Promise<PullRequest>;
  createPull(input: { title: string; body: string; head: string; base: string }): Promise<PullRequest>;
  updatePull(number: number, input: { title: string; body: string }): Promise<PullRequest>;
}

/** A forge refused or could not be reached; `status` is the forge's HTTP status when it answered. */
export class ForgeError extends Error {
  override name = 'ForgeError';
  constructor(message: string, readonly status: number | null) {
    super(message);
  }
}
