/**
 * git on the worker, for the network half of a session's repository work: clone and push with the
 * repository's token. The sandbox never sees the token and has no network; this is where it is
 * used, and only here.
 *
 * - The token travels as an HTTP header in the environment of one git process (GIT_CONFIG_*),
 *   scoped to the clone URL's origin: never in argv, never in a .git/config, never on disk.
 * - Before git runs, the destination's address is checked with the outbound guard's rules
 *   (purpose `forge`) and pinned (http.curloptResolve), so DNS cannot send git elsewhere later;
 *   redirects are off.
 * - No system or user git config is read (a worker's own credential helpers stay out of it), no
 *   hooks run, only http(s) transports are allowed.
 * - Every message that leaves here has the token redacted.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { outbound, blockedCause } from '../../lib/outbound.js';

const GIT_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_CAP = 64 * 1024;

/** A git command failed; its message is safe to show (token redacted). */
export class GitError extends Error {
  override name = 'GitError';
}

export interface Remote {
  url: string;
  token: string;
}

/** The token, and the forms git or a server could echo it in, replaced by `***`. */
export function redact(text: string, token: string | undefined): string {
  if (!token) return text;
  const forms = [token, encodeURIComponent(token), basic(token), Buffer.from(token).toString('base64')].filter((f) => f.length >= 4);
  let out = text;
  for (const f of forms) out = out.split(f).join('***');
  return out;
}

const basic = (token: string) => Buffer.from(`x-access-token:${token}`).toString('base64');

/** The git config (as GIT_CONFIG_* variables) for talking to `remote`, after the guard passed its address. */
async function remoteConfig(remote: Remote): Promise<Array<[string, string]>> {
  const u = new URL(remote.url);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new GitError(`only http(s) remotes are supported, not ${u.protocol}`);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = await outbound().addresses(host, port, 'forge');
  } catch (err) {
    const blocked = blockedCause(err);
    throw new GitError(blocked ? `the repository's address is not allowed: ${blocked.message}` : `cannot resolve ${host}: ${(err as Error).message}`);
  }
  const cfg: Array<[string, string]> = [
    [`http.${u.origin}/.extraHeader`, `Authorization: Basic ${basic(remote.token)}`],
    ['http.followRedirects', 'false'],
  ];
  if (!net.isIP(host)) {
    const a = addresses[0];
    cfg.push(['http.curloptResolve', `${host}:${port}:${net.isIPv6(a) ? `[${a}]` : a}`]);
  }
  return cfg;
}

/** Settings for every git run here: nothing from the host's config, no hooks, http(s) only. */
const BASE_CONFIG: Array<[string, string]> = [
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['credential.helper', ''],
  ['protocol.allow', 'never'],
  ['protocol.https.allow', 'always'],
  ['protocol.http.allow', 'always'],
  ['init.defaultBranch', 'main'],
];

export interface GitResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `git <args>`; with `remote`, the process may talk to it with the token. Throws GitError
 * (message redacted) on a non-zero exit, after `timeoutMs`, or when the guard refuses the remote.
 */
export async function git(args: string[], opts: { cwd?: string; home: string; remote?: Remote; timeoutMs?: number; signal?: AbortSignal; label?: string }): Promise<GitResult> {
  const config = [...BASE_CONFIG, ...(opts.remote ? await remoteConfig(opts.remote) : [])];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: opts.home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    // Asked for a user name or password (the server refused the token): fail, never prompt.
    GIT_ASKPASS: 'false',
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  const token = opts.remote?.token;
  return new Promise<GitResult>((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < OUTPUT_CAP) stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < OUTPUT_CAP) stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? GIT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new GitError(redact(`git ${opts.label ?? args[0]} could not run: ${err.message}`, token)));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ stdout, stderr });
      const why = sig ? `was killed (${sig}${sig === 'SIGKILL' ? ', timed out' : ''})` : `exited with ${code}`;
      const detail = stderr.trim().split('\n').filter((l) => !/^(hint|Cloning into)/.test(l)).slice(-6).join('\n');
      reject(new GitError(redact(`git ${opts.label ?? args[0]} ${why}${detail ? `: ${detail}` : ''}`, token)));
    });
  });
}
