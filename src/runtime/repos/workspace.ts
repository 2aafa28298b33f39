/**
 * A session's repository in its sandbox (issue 14). The worker clones with the token into a
 * temporary directory of its own, makes the session's branch, and copies the result into
 * /workspace/<name> through the driver's archive API (owned by the sandbox user, uid 1000). To
 * push, it reads the repository's .git back out of the sandbox the same way and pushes the
 * session's branch with the token. The sandbox keeps network `none`, and its .git/config holds
 * the remote's plain URL and the agent's name, never a credential.
 *
 * What comes back out of the sandbox is the agent's to shape, so it is treated as hostile: only
 * regular files and directories under .git/ are unpacked, and the config, hooks, alternates and
 * the like are replaced before git on the worker reads it.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { SandboxDriver } from '../sandbox/driver.js';
import { git, GitError, type Remote } from './git.js';

/** The sandbox user (images run their agent as 1000:1000). */
const AGENT_UID = 1000;
const AGENT_GID = 1000;
const WORKSPACE = '/workspace';
/** The most of a sandbox's .git the worker unpacks to push (a bigger one is refused, not pushed). */
const MAX_GIT_DIR_BYTES = 2 * 1024 ** 3;

export { GitError };

export interface CloneRequest {
  driver: SandboxDriver;
  containerId: string;
  /** Directory name under /workspace. */
  dirName: string;
  remote: Remote;
  baseBranch: string;
  /** Wanted branch name; a suffix is added while `taken` says it is in use (or the remote has it). */
  branch: string;
  taken: (branch: string) => Promise<boolean>;
  author: { name: string; email: string };
  /** Aborting kills the git process (the session was paused or stopped). */
  signal?: AbortSignal;
}

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'troupe-git-'));
}

/** Clones, branches and copies the repository into the sandbox; the branch it made. */
export async function cloneIntoSandbox(req: CloneRequest): Promise<string> {
  const tmp = await tempDir();
  try {
    const dir = path.join(tmp, req.dirName);
    await git(['clone', '--quiet', '--no-tags', '--branch', req.baseBranch, '--', req.remote.url, dir], { home: tmp, remote: req.remote, label: 'clone', signal: req.signal });
    // Branches on the remote (a full clone knows them all) and other conversations' are taken.
    const remoteHas = async (b: string) =>
      git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${b}`], { cwd: dir, home: tmp }).then(() => true, () => false);
    let branch = req.branch;
    for (let n = 2; (await remoteHas(branch)) || (await req.taken(branch)); n++) branch = `${req.branch}-${n}`;
    await git(['checkout', '--quiet', '-b', branch], { cwd: dir, home: tmp });
    await git(['config', 'user.name', req.author.name], { cwd: dir, home: tmp });
    await git(['config', 'user.email', req.author.email], { cwd: dir, home: tmp });
    // The sandbox does not push: the worker does, from its own copy of .git.
    await git(['config', 'remote.origin.pushurl', 'no-push://use-the-create_pull_request-tool'], { cwd: dir, home: tmp });
    await copyIn(req.driver, req.containerId, tmp, req.dirName);
    return branch;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** tar of `parent/<name>` owned by the sandbox user, unpacked into /workspace. */
async function copyIn(driver: SandboxDriver, containerId: string, parent: string, name: string): Promise<void> {
  const child = spawn('tar', ['-C', parent, '-c', `--owner=${AGENT_UID}`, `--group=${AGENT_GID}`, '--numeric-owner', '--', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const chunks: Buffer[] = [];
  for await (const c of child.stdout) chunks.push(c as Buffer);
  const code = await exited;
  if (code !== 0) throw new GitError(`packing the clone failed: ${stderr.trim()}`);
  await driver.putArchive(containerId, WORKSPACE, Buffer.concat(chunks));
}

export interface PushRequest {
  driver: SandboxDriver;
  containerId: string;
  dirName: string;
  remote: Remote;
  branch: string;
  signal?: AbortSignal;
}

/** Pushes the session's branch from the sandbox's repository to the remote; the commit it pushed. */
export async function pushFromSandbox(req: PushRequest): Promise<string> {
  const tmp = await tempDir();
  try {
    const gitDir = path.join(tmp, 'repo.git');
    await copyGitDirOut(req.driver, req.containerId, `${WORKSPACE}/${req.dirName}/.git`, gitDir);
    // Only what git needs to push: the config and everything that could run or redirect is ours.
    for (const p of ['config', 'hooks', 'info', 'objects/info/alternates', 'objects/info/http-alternates', 'commondir', 'worktrees', 'modules']) {
      await fs.rm(path.join(gitDir, p), { recursive: true, force: true });
    }
    await fs.writeFile(path.join(gitDir, 'config'), '[core]\n\trepositoryformatversion = 0\n\tbare = true\n');
    const opts = { home: tmp };
    const sha = await git(['--git-dir', gitDir, 'rev-parse', '--verify', '--quiet', `refs/heads/${req.branch}^{commit}`], { ...opts, label: 'rev-parse' })
      .then((r) => r.stdout.trim())
      .catch(() => {
        throw new GitError(`/workspace/${req.dirName} has no branch ${req.branch} (the session's branch): check it out again and commit there`);
      });
    await git(['--git-dir', gitDir, 'push', '--quiet', '--no-verify', req.remote.url, `+refs/heads/${req.branch}:refs/heads/${req.branch}`], { ...opts, remote: req.remote, label: 'push', signal: req.signal });
    return sha;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Unpacks the archive of a container's .git into `dest`: regular files and directories only, nothing outside it. */
async function copyGitDirOut(driver: SandboxDriver, containerId: string, from: string, dest: string): Promise<void> {
  let archive;
  try {
    archive = await driver.getArchive(containerId, from);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw new GitError(`${from} is missing: the repository was removed from the sandbox`);
    throw err;
  }
  await fs.mkdir(dest, { recursive: true });
  const extract = tar.extract();
  archive.pipe(extract);
  let total = 0;
  for await (const entry of extract) {
    total += entry.header.size ?? 0;
    if (total > MAX_GIT_DIR_BYTES) {
      archive.destroy();
      throw new GitError(`${from} is larger than ${MAX_GIT_DIR_BYTES / 1024 ** 3} GiB: too big to push from here`);
    }
    const name = path.posix.normalize(entry.header.name);
    // Entries are `.git/...`; anything else, or anything that climbs out, is skipped.
    const rel = name === '.git' || name === '.git/' ? '' : name.startsWith('.git/') ? name.slice(5) : null;
    const type = entry.header.type;
    if (rel === null || rel.split('/').includes('..') || path.posix.isAbsolute(rel) || (type !== 'file' && type !== 'directory')) {
      entry.resume();
      continue;
    }
    const target = path.join(dest, rel);
    if (type === 'directory') {
      await fs.mkdir(target, { recursive: true });
      entry.resume();
    } else {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await pipeline(entry, createWriteStream(target, { mode: 0o644 }));
    }
  }
}

/** `agent/<slug>` from a task title or a first message. */
export function branchFor(text: string | null | undefined): string {
  const words = (text ?? '').toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim().split(' ').filter(Boolean);
  let slug = '';
  for (const w of words) {
    if ((slug ? slug.length + 1 : 0) + w.length > 40) break;
    slug = slug ? `${slug}-${w}` : w;
  }
  return `agent/${slug || 'work'}`;
}
