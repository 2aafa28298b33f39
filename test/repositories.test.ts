/**
 * Agents that work on repositories (issue 14), on real git: a git server on loopback
 * (`git http-backend` with basic auth), a loopback stand-in for the GitHub REST API (so
 * @octokit/rest runs for real), a real api and a real worker process (their logs captured at
 * debug level), Docker sandboxes on the default image (it has git), and real Socket.IO and SSE
 * clients. Scripted agents commit with their bash tool and call create_pull_request.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { db } from '../src/db/knex.js';
import { signUserToken } from '../src/http/auth.js';
import { connectDashboard, openStream, subscribe } from './support/clients.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import { gitOut, startGitServer, type GitServer } from './support/git-server.js';
import { request, uniq } from './support/http.js';
import { freePort, startApi, startWorker, type Proc } from './support/processes.js';
import { waitFor } from './support/wait.js';

const DEFAULT_IMAGE = 'troupe-sandbox-default:latest';
const docker = new Docker();

describe('repositories and pull requests (issue 14)', function () {
  this.timeout(120_000);
  let git: GitServer;
  let gh: FakeGitHub;
  let api: Proc | undefined;
  let worker: Proc | undefined;
  let url = '';
  // High-entropy, so a hit anywhere is this token and nothing else.
  const TOKEN = `ghp_${crypto.randomBytes(18).toString('hex')}`;

  before(async () => {
    [git, gh] = await Promise.all([startGitServer(), startFakeGitHub()]);
    git.tokens.add(TOKEN);
    gh.tokens.add(TOKEN);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // A process pair of its own (own queue prefix), so every log line of this work is captured here.
    const env = {
      TROUPE_REDIS_PREFIX: `${process.env.TROUPE_REDIS_PREFIX}-repos-${process.pid}`, TROUPE_LOG_LEVEL: 'debug', TROUPE_POOL_SIZE: '0',
      TROUPE_OUTBOUND_ALLOW: '127.0.0.1', PORT: String(port), HOST: '127.0.0.1',
    };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });

  after(async () => {
    for (const p of [api, worker]) if (p) await p.stop(10_000);
    await Promise.all([git?.close(), gh?.close()]);
  });

  const call = (method: string, path: string, token: string, body?: unknown) => request(url, method, path, { token, body });

  async function project() {
    const owner = { id: uniq('repos'), token: '' };
    owner.token = await signUserToken(owner.id);
    const p = await call('POST', '/api/v1/projects', owner.token, { name: owner.id });
    expect(p.status).to.equal(201);
    return { owner, projectId: p.body.id as string };
  }

  async function agent(projectId: string, token: string, body: Record<string, unknown>) {
    const r = await call('POST', `/api/v1/projects/${projectId}/agents`, token, { name: uniq('dev'), llm_provider: 'scripted', sandbox: { image: DEFAULT_IMAGE }, ...body });
    expect(r.status, r.text).to.equal(201);
    return r.body;
  }

  /** A fresh repository on the git server and the fake forge, registered in the project. */
  async function repository(projectId: string, token: string, name = uniq('demo')) {
    const full = `acme/${name}`;
    const cloneUrl = await git.createRepo(full, { 'README.md': '# Demo\n', 'src/app.txt': 'v1\n' });
    gh.repos.set(full, { default_branch: 'main' });
    const r = await call('POST', `/api/v1/projects/${projectId}/repositories`, token, { name, clone_url: cloneUrl, api_base_url: gh.url, token: TOKEN });
    expect(r.status, r.text).to.equal(201);
    return { ...r.body, full, bare: git.bareDir(full) };
  }

  const session = (id: string) => db('sessions').where({ id }).first();
  const events = (id: string) => db('session_events').where({ session_id: id }).orderBy('event_index');

  it('repositories: CRUD with a write-only token checked by the forge; bad URL, unknown forge, rejected token → 4xx and no row; URL change clears the token', async () => {
    const { owner, projectId } = await project();
    const base = `/api/v1/projects/${projectId}/repositories`;
    const cloneUrl = await git.createRepo('acme/crud', { 'a.txt': 'a' });
    gh.repos.set('acme/crud', { default_branch: 'main' });
    const count = async () => Number((await db('repositories').where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count);

    const bad: Array<[Record<string, unknown>, number, RegExp]> = [
      [{ name: 'x', clone_url: 'ftp://example.com/a/b.git', token: TOKEN }, 400, /clone_url/],
      [{ name: 'x', clone_url: 'https://github.com/only-owner', token: TOKEN }, 400, /owner\/name/],
      [{ name: 'x', clone_url: 'https://user:pw@github.com/a/b.git', token: TOKEN }, 400, /credentials/],
      [{ name: 'x', clone_url: cloneUrl, forge: 'sourcehut', token: TOKEN }, 400, /forge/],
      [{ name: '../x', clone_url: cloneUrl, token: TOKEN }, 400, /name/],
      [{ name: 'x', clone_url: cloneUrl, api_base_url: gh.url, token: 'ghp_wrong' }, 422, /rejected the token \(401\)/],
      [{ name: 'x', clone_url: `${git.url}/acme/nope.git`, api_base_url: gh.url, token: TOKEN }, 422, /no repository acme\/nope/],
      [{ name: 'x', clone_url: cloneUrl, api_base_url: 'http://10.1.2.3:9/', token: TOKEN }, 422, /not reachable|not allowed/],
    ];
    for (const [body, status, re] of bad) {
      const r = await call('POST', base, owner.token, body);
      expect(r.status, JSON.stringify(body)).to.equal(status);
      expect(r.body.error, JSON.stringify(body)).to.match(re);
      expect(r.text).to.not.contain('ghp_wrong');
    }
    expect(await count()).to.equal(0);

    const created = await call('POST', base, owner.token, { name: 'crud', clone_url: cloneUrl, api_base_url: gh.url, token: TOKEN });
    expect(created.status).to.equal(201);
    expect(created.body).to.include({ name: 'crud', full_name: 'acme/crud', default_branch: 'main', forge: 'github', has_token: true });
    expect(created.body).to.not.have.property('token');
    // The forge saw the token on GET /repos/acme/crud; the row holds it sealed only.
    expect(gh.requests.some((q) => q.path === '/repos/acme/crud' && q.authorization === `token ${TOKEN}`)).to.equal(true);
    const row = await db('repositories').where({ id: created.body.id }).first();
    expect(row.token_sealed).to.match(/^v1:/).and.not.contain(TOKEN);
    expect((await call('POST', base, owner.token, { name: 'crud', clone_url: cloneUrl, api_base_url: gh.url, token: TOKEN })).status).to.equal(409);

    const list = await call('GET', base, owner.token);
    const byName = await call('GET', `${base}/crud`, owner.token);
    expect(list.body.map((r: any) => r.name)).to.deep.equal(['crud']);
    expect(byName.body.id).to.equal(created.body.id);
    for (const r of [created, list, byName]) expect(r.text).to.not.contain(TOKEN);

    // Default API base URL is GitHub's.
    expect((await call('PATCH', `${base}/crud`, owner.token, { default_branch: 'develop' })).body).to.include({ default_branch: 'develop', has_token: true });
    const moved = await call('PATCH', `${base}/crud`, owner.token, { clone_url: `${git.url}/acme/crud2.git` });
    expect(moved.status).to.equal(200);
    expect(moved.body).to.include({ has_token: false, full_name: 'acme/crud2' });
    expect(moved.body.secrets_cleared).to.deep.equal(['token']);
    const again = await call('PATCH', `${base}/crud`, owner.token, { clone_url: cloneUrl, token: TOKEN });
    expect(again.body).to.include({ has_token: true });
    expect(again.body.secrets_cleared).to.deep.equal([]);
    const sealed = (await db('repositories').where({ id: created.body.id }).first()).token_sealed;
    const rejected = await call('PATCH', `${base}/crud`, owner.token, { token: 'ghp_wrong', default_branch: 'other' });
    expect(rejected.status).to.equal(422);
    expect(await db('repositories').where({ id: created.body.id }).first()).to.include({ token_sealed: sealed, default_branch: 'develop' });

    // Managing is for users who are not viewers: an agent key and a viewer get 403, and change nothing.
    const someAgent = await agent(projectId, owner.token, {});
    const key = (await call('POST', `/api/v1/projects/${projectId}/agents/${someAgent.id}/api-keys`, owner.token, {})).body.key;
    const viewer = { id: uniq('viewer'), token: '' };
    viewer.token = await signUserToken(viewer.id);
    expect((await call('POST', `/api/v1/projects/${projectId}/members`, owner.token, { user_id: viewer.id, role: 'viewer' })).status).to.equal(201);
    for (const token of [key, viewer.token]) {
      expect((await call('POST', base, token, { name: 'y', clone_url: cloneUrl, api_base_url: gh.url, token: TOKEN })).status).to.equal(403);
      expect((await call('PATCH', `${base}/crud`, token, { default_branch: 'x' })).status).to.equal(403);
      expect((await call('DELETE', `${base}/crud`, token)).status).to.equal(403);
      expect((await call('GET', `${base}/crud`, token)).body).to.include({ default_branch: 'develop', has_token: true });
    }
    // Another project sees nothing.
    const other = await project();
    expect((await call('GET', `/api/v1/projects/${other.projectId}/repositories/${created.body.id}`, other.owner.token)).status).to.equal(404);
    expect((await call('GET', `${base}/${created.body.id}`, other.owner.token)).status).to.equal(404);

    expect((await call('DELETE', `${base}/crud`, owner.token)).body).to.include({ deleted: true });
    expect(await count()).to.equal(0);
  });

  it('a session on a repository: the worker clones it on agent/<slug>; bash commits reach the remote through create_pull_request; a second call updates the same PR; pr_url, Socket.IO and SSE; the token is nowhere', async () => {
    const { owner, projectId } = await project();
    const repo = await repository(projectId, owner.token);
    const dir = `/workspace/${repo.name}`;
    const a = await agent(projectId, owner.token, {
      can_clone_repos: true, can_create_prs: true,
      script: {
        turns: [
          { text: 'looking', tool_calls: [{ name: 'bash', input: { command: `cd ${dir} && git branch --show-current && cat src/app.txt && git remote -v && echo hello > feature.txt && git add feature.txt && git commit -qm "Add feature" && git log --oneline | head -3 && id -u && stat -c %u .git/config` } }] },
          { text: 'opening', tool_calls: [{ name: 'create_pull_request', input: { title: 'Add feature', body: 'First version' } }] },
          { text: 'more', tool_calls: [{ name: 'bash', input: { command: `cd ${dir} && echo more >> feature.txt && git commit -qam "More" && git status --short | wc -l` } }] },
          { text: 'updating', tool_calls: [{ name: 'create_pull_request', input: { title: 'Add feature v2', body: 'Second version' } }] },
          { text: 'done' },
        ],
      },
    });
    const dash = await connectDashboard(url, owner.token);
    expect(await subscribe(dash.socket, { project_id: projectId })).to.deep.equal({ ok: true });
    try {
      const created = await call('POST', '/api/v1/sessions', owner.token, { agent_id: a.id, project_id: projectId, message: 'Implement the OAuth login flow, please!', repository: repo.name });
      expect(created.status, created.text).to.equal(201);
      expect(created.body).to.include({ repository_id: repo.id });
      const id = created.body.id;
      const s = await waitFor('session idle', async () => {
        const row = await session(id);
        if (row.status === 'failed') throw new Error(`session failed: ${row.error}`);
        return row.status === 'idle' ? row : null;
      }, { timeoutMs: 90_000, onError: 'throw' });

      const branch = 'agent/implement-the-oauth-login-flow-please';
      expect(s).to.include({ branch_name: branch, base_branch: 'main', pr_number: 1, pr_url: `https://github.example/${repo.full}/pull/1` });

      // The clone: on the branch, the repository's files, remote without credentials, owned by the sandbox user.
      const results = (await events(id)).filter((e: any) => e.event_type === 'tool_result');
      expect(results.map((e: any) => e.payload.is_error)).to.deep.equal([false, false, false, false]);
      const first = results[0].payload.content as string;
      expect(first).to.contain(branch).and.contain('v1').and.contain(`${git.url}/${repo.full}.git`).and.contain('Add feature');
      expect(first).to.match(/\n1000\n1000\n/); // id -u, and the owner of .git/config
      expect(results[1].payload.content).to.match(/Pull request #1 created/);
      expect(results[3].payload.content).to.match(/Pull request #1 updated/);

      // The commits reached the remote, on the branch.
      const remote = await gitOut(['ls-remote', repo.bare]);
      expect(remote).to.match(new RegExp(`refs/heads/${branch}$`, 'm'));
      expect(await gitOut(['--git-dir', repo.bare, 'show', `${branch}:feature.txt`])).to.equal('hello\nmore\n');
      expect(await gitOut(['--git-dir', repo.bare, 'log', '--format=%s|%an', `main..${branch}`])).to.equal(`More|${a.name}\nAdd feature|${a.name}\n`);

      // One PR: created once with the right head and base, updated once; never a duplicate.
      const prCalls = gh.requests.filter((q) => q.path.startsWith(`/repos/${repo.full}/pulls`));
      const posts = prCalls.filter((q) => q.method === 'POST');
      expect(posts).to.have.length(1);
      expect(posts[0].body).to.deep.equal({ title: 'Add feature', body: 'First version', head: branch, base: 'main' });
      expect(prCalls.filter((q) => q.method === 'PATCH').map((q) => q.body)).to.deep.equal([{ title: 'Add feature v2', body: 'Second version' }]);
      expect(gh.pulls.get(repo.full)).to.have.length(1);
      expect(gh.pulls.get(repo.full)![0]).to.include({ title: 'Add feature v2', state: 'open' });

      // Durable events, the seed's Socket.IO event (once), the view, SSE.
      const prEvents = (await events(id)).filter((e: any) => e.event_type === 'pr_created');
      expect(prEvents.map((e: any) => e.payload.action)).to.deep.equal(['created', 'updated']);
      const pr = await waitFor('pr_created on Socket.IO', async () => dash.received.find(([n]) => n === 'agent:conversation:pr_created'));
      expect(pr[1]).to.deep.equal({ conversation_id: id, task_id: null, pr_url: s.pr_url, branch_name: branch });
      await waitFor('updated event too', async () => dash.received.filter(([n, d]) => n === 'agent:conversation:event' && d.event_type === 'pr_created').length === 2);
      expect(dash.received.filter(([n]) => n === 'agent:conversation:pr_created')).to.have.length(1);
      const view = await call('GET', `/api/v1/projects/${projectId}/conversations/${id}`, owner.token);
      expect(view.body).to.include({ branch_name: branch, pr_url: s.pr_url });
      const listed = await call('GET', `/api/v1/projects/${projectId}/agents/${a.id}/conversations`, owner.token);
      expect(listed.body.conversations[0]).to.include({ branch_name: branch, pr_url: s.pr_url });
      const stream = openStream(`${url}/api/v1/sessions/${id}/stream`, owner.token, '0');
      const frame = await waitFor('SSE pr_created', async () => stream.frames.find((f) => f.event === 'pr_created'));
      stream.close();
      expect(frame.data.payload).to.include({ pr_url: s.pr_url, branch_name: branch, action: 'created' });

      // The token: not in the events, responses, Socket.IO, logs, git server URLs, or the sandbox.
      const responses = [created.text, view.text, listed.text, (await call('GET', `/api/v1/sessions/${id}`, owner.token)).text, (await call('GET', `/api/sessions/${id}`, owner.token)).text];
      const everything = [JSON.stringify(await events(id)), JSON.stringify(s), ...responses, JSON.stringify(dash.received), JSON.stringify(stream.frames), api!.output(), worker!.output()].join('\n');
      expect(everything).to.contain(branch); // the haystack is real
      expect(worker!.output()).to.contain('repository cloned into the sandbox');
      expect(everything).to.not.contain(TOKEN);
      expect(everything).to.not.contain(Buffer.from(`x-access-token:${TOKEN}`).toString('base64'));
      // Git spoke to the server with the token (basic auth) — from the worker only.
      expect(git.requests.some((q) => q.status === 200 && q.url.includes('git-receive-pack'))).to.equal(true);

      const sb = await db('sandboxes').where({ id: s.sandbox_id }).first();
      const container = docker.getContainer(sb.container_id);
      const info = await container.inspect();
      expect(info.HostConfig.NetworkMode).to.equal('none');
      const sh = async (cmd: string) => {
        const exec = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, User: '1000' });
        const out = await new Promise<string>((resolve, reject) => exec.start({}, (err, stream) => {
          if (err || !stream) return reject(err);
          let text = '';
          const sink = new PassThrough();
          sink.on('data', (c: Buffer) => (text += c.toString()));
          docker.modem.demuxStream(stream, sink, sink);
          stream.on('end', () => resolve(text));
        }));
        return { out, code: (await exec.inspect()).ExitCode };
      };
      const scan = await sh(`grep -r -a -l -F -e '${TOKEN}' /workspace`);
      expect(scan, scan.out).to.deep.equal({ out: '', code: 1 }); // read everything, found nothing
      expect((await sh(`grep -r -a -l -F -e '${TOKEN}' /tmp /etc /home 2>/dev/null | wc -l`)).out.trim()).to.equal('0');
      expect((await sh(`env; cat /proc/1/environ | tr '\\0' '\\n'`)).out).to.not.contain(TOKEN);
      const gitConfig = (await sh(`cat ${dir}/.git/config`)).out;
      expect(gitConfig).to.contain(`${git.url}/${repo.full}.git`).and.not.match(/extraheader|authorization|password|ghp_/i);
      // And the sandbox cannot push on its own (no network, no credentials).
      expect((await sh(`cd ${dir} && timeout 20 git push origin HEAD 2>&1`)).code).to.not.equal(0);
    } finally {
      dash.socket.close();
    }
  });

  it('refusals: naming a repository without can_clone_repos is 403 and creates nothing; create_pull_request without can_create_prs is refused; unknown repository → 400', async () => {
    const { owner, projectId } = await project();
    const repo = await repository(projectId, owner.token);
    const noClone = await agent(projectId, owner.token, { can_clone_repos: false, can_create_prs: true });
    const before = Number((await db('sessions').where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count);
    for (const [path, body] of [
      ['/api/v1/sessions', { agent_id: noClone.id, project_id: projectId, message: 'hi', repository: repo.name }],
      ['/api/sessions', { agent_id: noClone.id, project_id: projectId, prompt: 'hi', repository: repo.id }],
      [`/api/v1/projects/${projectId}/agents/${noClone.id}/chat-sessions`, { message: 'hi', repository: repo.name }],
    ] as Array<[string, Record<string, unknown>]>) {
      const r = await call('POST', path, owner.token, body);
      expect(r.status, path).to.equal(403);
      expect(r.body.error).to.match(/can_clone_repos/);
    }
    const unknown = await call('POST', '/api/v1/sessions', owner.token, { agent_id: noClone.id, project_id: projectId, message: 'hi', repository: 'nope', base_branch: 'main' });
    expect(unknown.status).to.equal(403); // the flag is checked first
    const cloner = await agent(projectId, owner.token, {
      can_clone_repos: true, can_create_prs: false,
      script: { turns: [{ text: 'try', tool_calls: [{ name: 'create_pull_request', input: { title: 'x' } }] }, { text: 'ok' }] },
    });
    expect((await call('POST', '/api/v1/sessions', owner.token, { agent_id: cloner.id, project_id: projectId, message: 'hi', repository: 'nope' })).status).to.equal(400);
    expect((await call('POST', '/api/v1/sessions', owner.token, { agent_id: cloner.id, project_id: projectId, message: 'hi', repository: repo.name, base_branch: 'bad..name' })).status).to.equal(400);
    const after = Number((await db('sessions').where({ project_id: projectId }).count<{ count: string }[]>('* as count'))[0].count);
    expect(after).to.equal(before);

    const s = await call('POST', '/api/v1/sessions', owner.token, { agent_id: cloner.id, project_id: projectId, message: 'Fix the bug', repository: repo.name });
    expect(s.status).to.equal(201);
    const row = await waitFor('idle', async () => {
      const r = await session(s.body.id);
      if (r.status === 'failed') throw new Error(r.error);
      return r.status === 'idle' ? r : null;
    }, { timeoutMs: 60_000, onError: 'throw' });
    expect(row).to.include({ branch_name: 'agent/fix-the-bug', pr_url: null });
    const result = (await events(s.body.id)).find((e: any) => e.event_type === 'tool_result');
    expect(result.payload).to.include({ name: 'create_pull_request', is_error: true });
    expect(result.payload.content).to.match(/can_create_prs/);
    expect(gh.requests.filter((q) => q.method === 'POST' && q.path.includes(repo.full))).to.have.length(0);
  });

  it('a task for a hosted agent may name a repository: the PR link lands in the task thread and pr_created carries the task_id; refused without the flag or from another project', async () => {
    const { owner, projectId } = await project();
    const repo = await repository(projectId, owner.token);
    const asUser = (path: string, body: Record<string, unknown>) => call('POST', path, owner.token, body);
    const requester = await agent(projectId, owner.token, { kind: 'external' });
    const noFlag = await agent(projectId, owner.token, {});
    const worker2 = await agent(projectId, owner.token, {
      can_clone_repos: true, can_create_prs: true,
      script: {
        turns: [
          { text: 'work', tool_calls: [{ name: 'bash', input: { command: `cd /workspace/${repo.name} && echo login > login.txt && git add . && git commit -qm "Login"` } }] },
          { text: 'pr', tool_calls: [{ name: 'create_pull_request', input: { title: 'Implement login', body: 'As asked' } }] },
          { text: 'done', tool_calls: [{ name: 'finish', input: { summary: 'opened the PR' } }] },
        ],
      },
    });
    for (const target of [noFlag, worker2]) {
      const code = await asUser('/api/v1/pairing-codes', { asAgentId: requester.id });
      expect((await asUser('/api/v1/connections', { pairingCode: code.body.code, asAgentId: target.id })).status).to.equal(201);
    }
    const tasksBefore = Number((await db('tasks').where({ from_agent_id: requester.id }).count<{ count: string }[]>('* as count'))[0].count);
    const refused = await asUser('/api/v1/tasks', { toAgentId: noFlag.id, title: 'Implement login', message: 'please', repository: repo.name, asAgentId: requester.id });
    expect(refused.status).to.equal(403);
    expect(refused.body.error).to.match(/can_clone_repos/);
    // An agent of another project, connected to the worker, may not name this project's repository.
    const other = await project();
    const stranger = await agent(other.projectId, other.owner.token, { kind: 'external' });
    const code = await call('POST', '/api/v1/pairing-codes', other.owner.token, { asAgentId: stranger.id });
    expect((await asUser('/api/v1/connections', { pairingCode: code.body.code, asAgentId: worker2.id })).status).to.equal(201);
    const foreign = await call('POST', '/api/v1/tasks', other.owner.token, { toAgentId: worker2.id, title: 'x', message: 'y', repository: repo.name, asAgentId: stranger.id });
    expect(foreign.status).to.equal(403);
    expect(Number((await db('tasks').where({ from_agent_id: requester.id }).count<{ count: string }[]>('* as count'))[0].count)).to.equal(tasksBefore);

    const dash = await connectDashboard(url, owner.token);
    expect(await subscribe(dash.socket, { project_id: projectId })).to.deep.equal({ ok: true });
    try {
      const task = await asUser('/api/v1/tasks', { toAgentId: worker2.id, title: 'Implement login', message: 'OAuth, please', repository: repo.name, baseBranch: 'main', asAgentId: requester.id });
      expect(task.status, task.text).to.equal(201);
      expect(task.body).to.include({ repositoryId: repo.id, baseBranch: 'main' });
      const done = await waitFor('task completed', async () => {
        const t = await call('GET', `/api/v1/tasks/${task.body.id}?asAgentId=${requester.id}`, owner.token);
        if (t.body.status === 'failed') throw new Error('task failed');
        return t.body.status === 'completed' ? t.body : null;
      }, { timeoutMs: 90_000, onError: 'throw' });
      const s = await session(done.sessionId);
      expect(s).to.include({ branch_name: 'agent/implement-login', trigger_type: 'task_assigned' });
      expect(s.pr_url).to.match(/\/pull\/1$/);
      const msgs = await waitFor('task message with the link', async () => {
        const r = await call('GET', `/api/v1/tasks/${task.body.id}/messages?asAgentId=${requester.id}`, owner.token);
        return r.body.some((m: any) => m.content.includes(s.pr_url)) ? r.body : null;
      });
      expect(msgs.filter((m: any) => m.content.includes(s.pr_url))).to.have.length(1);
      const pr = await waitFor('pr_created', async () => dash.received.find(([n, d]) => n === 'agent:conversation:pr_created' && d.conversation_id === s.id));
      expect(pr[1]).to.deep.equal({ conversation_id: s.id, task_id: task.body.id, pr_url: s.pr_url, branch_name: 'agent/implement-login' });
      expect(await gitOut(['--git-dir', repo.bare, 'show', 'agent/implement-login:login.txt'])).to.equal('login\n');
    } finally {
      dash.socket.close();
    }
  });

  it('a chat on a repository: its conversations clone it, a follow-up after the end works on the same repository on a branch of its own', async () => {
    const { owner, projectId } = await project();
    const repo = await repository(projectId, owner.token);
    const a = await agent(projectId, owner.token, { can_clone_repos: true, script: { turns: [{ text: 'ok' }] } });
    const chat = await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/chat-sessions`, owner.token, { message: 'Tidy the README', repository: repo.name, base_branch: 'main' });
    expect(chat.status, chat.text).to.equal(201);
    expect(chat.body.conversation).to.include({ repository_id: repo.id, base_branch: 'main' });
    const firstId = chat.body.conversation.id;
    const first = await waitFor('first idle', async () => ((await session(firstId)).status === 'idle' ? session(firstId) : null), { timeoutMs: 60_000 });
    expect(first.branch_name).to.equal('agent/tidy-the-readme');
    expect((await call('POST', `/api/v1/projects/${projectId}/conversations/${firstId}/stop`, owner.token, {})).status).to.equal(200);
    const next = await call('POST', `/api/v1/projects/${projectId}/chat-sessions/${chat.body.id}/messages`, owner.token, { message: 'And the licence' });
    expect(next.status, next.text).to.equal(201);
    expect(next.body.new_conversation).to.equal(true);
    expect(next.body.conversation).to.include({ repository_id: repo.id, base_branch: 'main' });
    const second = await waitFor('second idle', async () => {
      const r = await session(next.body.conversation.id);
      return r.status === 'idle' ? r : null;
    }, { timeoutMs: 60_000 });
    expect(second.branch_name).to.equal('agent/tidy-the-readme-2');
  });

  it('branches are unique per conversation; a clone that fails fails the start with an error saying why, token redacted', async () => {
    const { owner, projectId } = await project();
    const repo = await repository(projectId, owner.token);
    const a = await agent(projectId, owner.token, { can_clone_repos: true, script: { turns: [{ text: 'ok' }] } });
    const start = (body: Record<string, unknown>) => call('POST', '/api/v1/sessions', owner.token, { agent_id: a.id, project_id: projectId, repository: repo.name, ...body });
    const settled = (id: string) => waitFor('settled', async () => {
      const r = await session(id);
      return ['idle', 'failed'].includes(r.status) ? r : null;
    }, { timeoutMs: 60_000 });

    const one = await settled((await start({ message: 'Add tests' })).body.id);
    const two = await settled((await start({ message: 'Add tests' })).body.id);
    expect([one.status, two.status]).to.deep.equal(['idle', 'idle']);
    expect([one.branch_name, two.branch_name]).to.deep.equal(['agent/add-tests', 'agent/add-tests-2']);

    const missing = await settled((await start({ message: 'Work', base_branch: 'no-such-branch' })).body.id);
    expect(missing.status).to.equal('failed');
    expect(missing.error).to.match(/Could not clone repository .*no-such-branch/);
    // The outbound guard's rules run before git: a remote on a private address is never contacted.
    await db('repositories').where({ id: repo.id }).update({ clone_url: `http://10.255.255.1/${repo.full}.git` });
    const guarded = await settled((await start({ message: 'Work' })).body.id);
    expect(guarded.status).to.equal('failed');
    expect(guarded.error).to.match(/address is not allowed/);
    await db('repositories').where({ id: repo.id }).update({ clone_url: `${git.url}/${repo.full}.git` });
    // The git server stops accepting the token: git's own complaint, redacted.
    git.tokens.delete(TOKEN);
    try {
      const revoked = await settled((await start({ message: 'Work' })).body.id);
      expect(revoked.status).to.equal('failed');
      expect(revoked.error).to.match(/Could not clone repository/).and.match(/Authentication failed|401|could not read/i);
      const errEvent = (await events(revoked.id)).find((e: any) => e.event_type === 'error');
      expect(errEvent.payload.message).to.equal(revoked.error);
      expect(JSON.stringify(await events(revoked.id)) + revoked.error + worker!.output()).to.not.contain(TOKEN);
      expect(revoked.branch_name).to.equal(null);
    } finally {
      git.tokens.add(TOKEN);
    }
  });
});
