/**
 * What a sandbox may be, as pure functions shared by the api (services refuse a request that
 * breaks a rule: 400/403) and the workers (which clamp or refuse again when they build a container,
 * in case a row was written before a rule existed or by something other than the api):
 *  - images come from an allow-list (TROUPE_ALLOWED_IMAGES);
 *  - memory, CPUs and pids stay under the deployment's ceilings;
 *  - the container never runs as root.
 * No I/O here, so both sides decide identically and tests can check the rules alone.
 */

/** Troupe's own images: the default allow-list (with whatever TROUPE_DEFAULT_IMAGE names). */
export const TROUPE_IMAGES = ['troupe-sandbox-default', 'troupe-sandbox-minimal'] as const;

/** The uid:gid a sandbox runs as when its image names no non-root user of its own (Troupe's images use it too). */
export const SANDBOX_USER = '1000:1000';

const ENTRY = /^(\*|[A-Za-z0-9][A-Za-z0-9._/:@-]{0,299}\*?)$/;

/**
 * TROUPE_ALLOWED_IMAGES → the list; unset means Troupe's own images. The default image is always
 * allowed: the operator chose it, and sandboxes that name no image use it.
 */
export function parseAllowedImages(raw: string | undefined, defaultImage: string, problems: string[]): string[] {
  const entries = raw === undefined ? [...TROUPE_IMAGES] : raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of entries) {
    if (!ENTRY.test(e)) problems.push(`TROUPE_ALLOWED_IMAGES entry "${e}": expected an image name (repository or repository:tag) or a prefix ending in *`);
  }
  if (raw !== undefined && !entries.length) problems.push('TROUPE_ALLOWED_IMAGES: expected at least one image name');
  return [...new Set([...entries, defaultImage])];
}

/** `repo[:tag][@digest]` split into the repository and what pins it (a tag defaults to latest). */
function splitImage(image: string): { repo: string; ref: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { repo: splitImage(image.slice(0, at)).repo, ref: image.slice(at) };
  const colon = image.lastIndexOf(':');
  // A colon before the last slash belongs to a registry's port (host:5000/name).
  if (colon > image.lastIndexOf('/')) return { repo: image.slice(0, colon), ref: image.slice(colon + 1) };
  return { repo: image, ref: 'latest' };
}

/**
 * Whether `image` is on the list. An entry is a repository (any tag of it: `troupe-sandbox-minimal`),
 * a repository with a tag or digest (that one only; a missing tag means latest), a prefix ending in
 * `*` (`troupe-sandbox-*`), or `*` (any image: the operator opts out).
 */
export function imageAllowed(image: string, allowed: readonly string[]): boolean {
  const want = splitImage(image);
  return allowed.some((entry) => {
    if (entry.endsWith('*')) return image.startsWith(entry.slice(0, -1));
    const e = splitImage(entry);
    const pinned = entry.includes('@') || entry.lastIndexOf(':') > entry.lastIndexOf('/');
    return e.repo === want.repo && (!pinned || e.ref === want.ref);
  });
}

export interface Ceilings {
  memoryMb: number;
  cpus: number;
  pids: number;
}

export interface ResourceRequest {
  memory_mb?: number;
  cpus?: number;
  pids?: number;
}

/** One sentence per value above its ceiling (empty when everything fits). */
export function ceilingViolations(req: ResourceRequest, c: Ceilings): string[] {
  const out: string[] = [];
  if (req.memory_mb !== undefined && req.memory_mb > c.memoryMb) out.push(`memory_mb ${req.memory_mb} is above this deployment's ceiling of ${c.memoryMb} (TROUPE_SANDBOX_MAX_MEMORY_MB)`);
  if (req.cpus !== undefined && req.cpus > c.cpus) out.push(`cpus ${req.cpus} is above this deployment's ceiling of ${c.cpus} (TROUPE_SANDBOX_MAX_CPUS)`);
  if (req.pids !== undefined && req.pids > c.pids) out.push(`pids ${req.pids} is above this deployment's ceiling of ${c.pids} (TROUPE_SANDBOX_MAX_PIDS)`);
  return out;
}

/** The request with every value brought down to its ceiling (the worker's last line of defence). */
export function clampToCeilings<T extends ResourceRequest>(req: T, c: Ceilings): T {
  const out = { ...req };
  if (out.memory_mb !== undefined) out.memory_mb = Math.min(out.memory_mb, c.memoryMb);
  if (out.cpus !== undefined) out.cpus = Math.min(out.cpus, c.cpus);
  if (out.pids !== undefined) out.pids = Math.min(out.pids, c.pids);
  return out;
}

/** Whether a Docker `User` value means root: empty (the default), `root`, uid 0, or gid 0/root. */
export function isRootUser(user: string | undefined | null): boolean {
  const [u, g] = (user ?? '').trim().split(':');
  if (!u || u === 'root' || /^0+$/.test(u)) return true;
  return g !== undefined && (g === 'root' || /^0+$/.test(g));
}

/**
 * The `User` a container runs as, given what its image configures: the image's own user when it
 * is a numeric non-root uid (and gid, if given, non-root); otherwise 1000:1000. A user *name* is
 * not trusted, since a name can map to uid 0 in the image's /etc/passwd.
 */
export function containerUser(imageUser: string | undefined | null): string {
  const u = (imageUser ?? '').trim();
  return /^[1-9][0-9]*(:[1-9][0-9]*)?$/.test(u) ? u : SANDBOX_USER;
}
