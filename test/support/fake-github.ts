/**
 * A loopback stand-in for the GitHub REST API, speaking its wire format for the calls Troupe makes
 * (GET /repos/{owner}/{repo}; list, create, get and update pulls), so that @octokit/rest runs for
 * real. GitHub itself cannot be reached from the test machine. It knows the repositories it is
 * told of, accepts only the tokens it is given (`Authorization: token …` / `Bearer …`), refuses a
 * second open pull request for the same head as GitHub does (422), and records every request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakePull {
  number: number;
  title: string;
  body: string;
  head: string;
  base: string;
  state: 'open' | 'closed';
  html_url: string;
}

export interface FakeGitHub {
  url: string;
  tokens: Set<string>;
  repos: Map<string, { default_branch: string }>;
  pulls: Map<string, FakePull[]>;
  requests: Array<{ method: string; path: string; authorization?: string; body: any; status: number }>;
  close(): Promise<void>;
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const tokens = new Set<string>();
  const repos = new Map<string, { default_branch: string }>();
  const pulls = new Map<string, FakePull[]>();
  const requests: FakeGitHub['requests'] = [];
  let base = '';
  const server = http.createServer(async (req, res) => {
    let raw = '';
    for await (const c of req) raw += c;
    const body = raw ? JSON.parse(raw) : undefined;
    const u = new URL(req.url ?? '/', 'http://x');
    const entry = { method: req.method ?? '', path: u.pathname + u.search, authorization: req.headers.authorization, body, status: 0 };
    requests.push(entry);
    const send = (status: number, data: unknown) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3' }).end(JSON.stringify(data));
    };
    const token = /^(?:token|Bearer) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !tokens.has(token)) return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    const m = /^\/repos\/([^/]+)\/([^/]+)(\/pulls(?:\/(\d+))?)?$/.exec(u.pathname);
    const full = m ? `${m[1]}/${m[2]}` : '';
    const repo = repos.get(full);
    if (!m || !repo) return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });
    const list = pulls.get(full) ?? [];
    pulls.set(full, list);
    const view = (p: FakePull) => ({
      id: p.number * 1000, number: p.number, state: p.state, title: p.title, body: p.body, html_url: p.html_url,
      url: `${base}/repos/${full}/pulls/${p.number}`,
      head: { ref: p.head, label: `${m[1]}:${p.head}` }, base: { ref: p.base, label: `${m[1]}:${p.base}` },
    });
    if (!m[3] && req.method === 'GET') {
      return send(200, { id: 1, name: m[2], full_name: full, private: true, default_branch: repo.default_branch, permissions: { admin: false, push: true, pull: true } });
    }
    if (m[3] && !m[4] && req.method === 'GET') {
      const head = u.searchParams.get('head');
      const state = u.searchParams.get('state') ?? 'open';
      return send(200, list.filter((p) => (state === 'all' || p.state === state) && (!head || `${m[1]}:${p.head}` === head)).map(view));
    }
    if (m[3] && !m[4] && req.method === 'POST') {
      if (list.some((p) => p.state === 'open' && p.head === body.head)) {
        return send(422, { message: 'Validation Failed', errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${m[1]}:${body.head}.` }] });
      }
      const p: FakePull = { number: list.length + 1, title: body.title, body: body.body ?? '', head: body.head, base: body.base, state: 'open', html_url: `https://github.example/${full}/pull/${list.length + 1}` };
      list.push(p);
      return send(201, view(p));
    }
    const p = m[4] ? list.find((x) => x.number === Number(m[4])) : undefined;
    if (!p) return send(404, { message: 'Not Found', status: '404' });
    if (req.method === 'GET') return send(200, view(p));
    if (req.method === 'PATCH') {
      Object.assign(p, { ...(body.title !== undefined ? { title: body.title } : {}), ...(body.body !== undefined ? { body: body.body } : {}), ...(body.state ? { state: body.state } : {}) });
      return send(200, view(p));
    }
    return send(404, { message: 'Not Found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base, tokens, repos, pulls, requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
