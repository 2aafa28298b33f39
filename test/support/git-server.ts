/**
 * A real git server on loopback for the repository tests: bare repositories served by
 * `git http-backend` (smart HTTP, clone and push) behind a small Node HTTP server that asks for
 * basic auth and accepts only the tokens it was given (any user name, the token as password, as
 * GitHub does). Everything it was asked is recorded, authorization headers included.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'Seed', GIT_AUTHOR_EMAIL: 'seed@example.invalid', GIT_COMMITTER_NAME: 'Seed', GIT_COMMITTER_EMAIL: 'seed@example.invalid' };

export async function gitOut(args: string[], cwd?: string): Promise<string> {
  return (await run('git', args, { cwd, env: GIT_ENV })).stdout;
}

export interface GitServer {
  url: string;
  root: string;
  /** Tokens the server accepts (remove one to "revoke" it). */
  tokens: Set<string>;
  requests: Array<{ method: string; url: string; authorization?: string; status: number }>;
  /** Creates `owner/name.git` with one commit on `branch` holding `files`; its clone URL. */
  createRepo(fullName: string, files: Record<string, string>, branch?: string): Promise<string>;
  bareDir(fullName: string): string;
  close(): Promise<void>;
}

export async function startGitServer(): Promise<GitServer> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'troupe-test-git-'));
  const tokens = new Set<string>();
  const requests: GitServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization;
    const entry = { method: req.method ?? '', url: req.url ?? '', authorization: auth, status: 0 };
    requests.push(entry);
    const m = /^Basic (.+)$/.exec(auth ?? '');
    const password = m ? Buffer.from(m[1], 'base64').toString().split(':').slice(1).join(':') : null;
    if (!password || !tokens.has(password)) {
      entry.status = 401;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end('unauthorized');
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const child = spawn('git', ['http-backend'], {
      env: {
        ...GIT_ENV, GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1), REQUEST_METHOD: req.method ?? 'GET', CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        REMOTE_USER: 'agent', REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    req.pipe(child.stdin);
    // CGI: headers, a blank line, the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const i = head.indexOf('\r\n\r\n');
      const j = head.indexOf('\n\n');
      const end = i >= 0 ? i + 4 : j >= 0 ? j + 2 : -1;
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split(/\r?\n/).filter(Boolean)) {
        const k = line.slice(0, line.indexOf(':')).trim();
        const v = line.slice(line.indexOf(':') + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else headers[k] = v;
      }
      entry.status = status;
      res.writeHead(status, headers);
      res.write(head.subarray(end));
    });
    child.stdout.on('end', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url, root, tokens, requests,
    bareDir: (fullName) => path.join(root, `${fullName}.git`),
    async createRepo(fullName, files, branch = 'main') {
      const bare = path.join(root, `${fullName}.git`);
      await fs.mkdir(path.dirname(bare), { recursive: true });
      await gitOut(['init', '--quiet', '--bare', '-b', branch, bare]);
      await gitOut(['config', 'http.receivepack', 'true'], bare);
      const work = await fs.mkdtemp(path.join(os.tmpdir(), 'troupe-test-seed-'));
      await gitOut(['init', '--quiet', '-b', branch, work]);
      for (const [name, content] of Object.entries(files)) {
        await fs.mkdir(path.dirname(path.join(work, name)), { recursive: true });
        await fs.writeFile(path.join(work, name), content);
      }
      await gitOut(['add', '.'], work);
      await gitOut(['commit', '--quiet', '-m', 'Initial commit'], work);
      await gitOut(['push', '--quiet', bare, `${branch}:${branch}`], work);
      await fs.rm(work, { recursive: true, force: true });
      return `${url}/${fullName}.git`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
