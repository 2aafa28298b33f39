/**
 * The web dashboard in a real browser: Debian's Chromium driven by playwright-core, against a real
 * api process (so it can be restarted mid-stream) serving the built dashboard, with the suite's
 * in-process session worker, Postgres, Redis and Docker. Each test saves screenshots under
 * test/artifacts/dashboard/ and fails on any console error.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { call, newProject, newUser, sessionWorker, uniq, waitFor } from './support/harness.js';
import { createAgent } from './support/http.js';
import { freePort, ROOT, startApi, type Proc } from './support/processes.js';
import { DASHBOARD_DIST } from '../src/http/dashboard.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test/artifacts/dashboard');
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Sessions and containers are real: give the waits room on a busy machine. */
const LONG = { timeout: 45_000 };

describe('Dashboard in Chromium', function () {
  this.timeout(120_000);
  let api: Proc;
  let port: number;
  let base: string;
  let ctx: BrowserContext;
  let profile: string;
  let page: Page;
  let consoleErrors: string[];
  /** Console errors that a test expects (the api is down on purpose): matched and set aside. */
  let tolerated: RegExp | null;
  let shot = 0;

  const apiEnv = () => ({ PORT: String(port), HOST: '127.0.0.1', TROUPE_DEV_LOGIN: '1', TROUPE_PUBLIC_URL: base, TROUPE_LOG_LEVEL: 'warn' });

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: bash scripts/setup.sh --test installs it (apt-get install chromium)`);
    if (!fs.existsSync(path.join(DASHBOARD_DIST, 'index.html'))) {
      execFileSync('npm', ['run', 'build', '-w', 'packages/dashboard'], { cwd: ROOT, stdio: 'ignore' });
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of fs.readdirSync(ARTIFACTS)) if (f.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, f));
    await sessionWorker();
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    api = await startApi(apiEnv());
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    await api?.stop();
  });

  beforeEach(async () => {
    consoleErrors = [];
    tolerated = null;
    // A new tab each test: its own sessionStorage, so nobody is signed in.
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (tolerated?.test(m.text())) return;
      consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  });

  afterEach(async function () {
    const name = (this.currentTest?.title ?? 'test').replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
    await snap(`${name}-end`);
    await page.close();
    expect(consoleErrors, 'console errors').to.deep.equal([]);
  });

  async function snap(name: string) {
    const file = path.join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    return file;
  }

  async function signInWithToken(token: string) {
    await page.goto(`${base}/`);
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-form').getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  }

  /** A project with the given scripted agent, made over the API, and its owner signed in. */
  async function projectWithAgent(body: Record<string, unknown>) {
    const { owner, projectId } = await newProject();
    const agent = await createAgent(base, owner.token, projectId, body);
    await signInWithToken(owner.token);
    return { owner, projectId, agent };
  }

  async function startSessionFromUi(projectId: string, agentId: string, message: string) {
    await page.goto(`${base}/p/${projectId}/agents/${agentId}`);
    await page.getByTestId('start-message').fill(message);
    await page.getByTestId('start-session').getByRole('button', { name: 'Start session' }).click();
    await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);
    return page.url().split('/').pop()!;
  }

  it('signs in with the dev sign-in or a pasted token, keeps the token out of the URL, and the dev route is off by default', async () => {
    const user = uniq('dev');
    await page.goto(`${base}/`);
    await snap('sign-in');
    await page.getByTestId('dev-user').fill(user);
    await page.getByTestId('dev-form').getByRole('button', { name: 'Dev sign-in' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    await page.getByText('No projects yet — create one below.').waitFor();
    const token = await page.evaluate(() => sessionStorage.getItem('troupe.token'));
    expect(token).to.be.a('string');
    expect(page.url()).to.not.include(token!);
    // The minted token is a user token for that name.
    const projects = await call('POST', '/api/v1/projects', { token: token!, body: { name: 'via dev token' } });
    expect(projects.status).to.equal(201);
    const members = await call('GET', `/api/v1/projects/${projects.body.id}/members`, { token: token! });
    expect(members.body.map((m: { user_id: string }) => m.user_id)).to.include(user);

    // Sign out, then sign in with a pasted token; a wrong token is refused with the server's words.
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token-input').fill('not-a-token');
    await page.getByTestId('token-form').getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('token-form').getByTestId('error').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('troupe.token'))).to.equal(null);
    consoleErrors = consoleErrors.filter((e) => !/status of 401/.test(e)); // the refused token's own 401
    const other = await newUser();
    await signInWithToken(other.token);

    // Without TROUPE_DEV_LOGIN (the suite's in-process api), the route does not exist.
    const off = await call('POST', '/api/v1/dev/login', { body: { user: 'x' } });
    expect(off.status).to.equal(404);
    expect(off.body.error).to.match(/dev sign-in is off/);
    // API paths keep their JSON answers; other paths get the app.
    const missing = await fetch(`${base}/api/v1/nope`);
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.have.property('error');
    const deep = await fetch(`${base}/p/x/sessions`);
    expect(deep.status).to.equal(200);
    expect(deep.headers.get('content-security-policy')).to.include("default-src 'self'");
  });

  it('says how to build the dashboard when its files are missing', async () => {
    const { default: Koa } = await import('koa');
    const { dashboard } = await import('../src/http/dashboard.js');
    const app = new Koa().use(dashboard(path.join(os.tmpdir(), 'troupe-no-dashboard-here')));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const res = await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      expect(res?.status()).to.equal(503);
      await page.getByText('npm run build:dashboard').waitFor();
      consoleErrors = consoleErrors.filter((e) => !/status of 503/.test(e)); // the page's own status
    } finally {
      server.close();
    }
  });

  it('creates a scripted agent through the forms (the key is write-only)', async () => {
    const owner = await newUser();
    await signInWithToken(owner.token);
    await page.getByTestId('project-name').fill('Dashboard demo');
    await page.getByTestId('project-form').getByRole('button', { name: 'Create project' }).click();
    await page.waitForURL(/\/p\/[0-9a-f-]{36}\/agents$/);
    const projectId = page.url().split('/').at(-2)!;
    await page.getByText('No agents yet — create one with “New agent”.').waitFor();
    await page.getByTestId('new-agent').click();
    const script = { token_delay_ms: 20, turns: [{ text: 'Hello from the form.', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] }] };
    await page.getByTestId('agent-name').fill('Form Bot');
    await page.getByTestId('agent-handle').fill('form-bot');
    await page.getByTestId('agent-key').fill('sk-secret-from-the-form');
    await page.getByTestId('agent-script').fill(JSON.stringify(script));
    await snap('agent-form');
    await page.getByTestId('agent-form').getByRole('button', { name: 'Create agent' }).click();
    await page.waitForURL(/\/agents\/[0-9a-f-]{36}$/);
    await page.getByTestId('agent-detail').waitFor();

    const agents = await call('GET', `/api/v1/projects/${projectId}/agents`, { token: owner.token });
    expect(agents.body).to.have.length(1);
    expect(agents.body[0]).to.include({ name: 'Form Bot', handle: 'form-bot', llm_provider: 'scripted', has_llm_api_key: true });
    expect(agents.body[0].script).to.deep.equal(script);
    expect(await page.content()).to.not.include('sk-secret-from-the-form');
    await page.getByText('A key is stored (write-only)').waitFor();

    // An MCP server (its env value is write-only) and a skill, through their forms.
    const agentId = agents.body[0].id;
    const mcp = page.locator('section', { has: page.getByRole('heading', { name: 'MCP servers' }) });
    await mcp.getByText('No MCP servers — add one below').waitFor();
    await mcp.getByLabel('Name').fill('fetch');
    await mcp.getByLabel('Command').fill('uvx');
    await mcp.getByLabel('Args').fill('mcp-server-fetch --quiet');
    await mcp.getByLabel('Env (KEY=value per line; write-only)').fill('TOKEN=mcp-env-secret');
    await mcp.getByRole('button', { name: 'Add MCP server' }).click();
    await mcp.getByRole('cell', { name: 'TOKEN' }).waitFor();
    const skills = page.locator('section', { has: page.getByRole('heading', { name: 'Skills' }) });
    await skills.getByLabel('Name').fill('review-guide');
    await skills.getByLabel('Triggers').fill('review, pr');
    await skills.getByLabel('Content (markdown)').fill('# Rules');
    await skills.getByRole('button', { name: 'Add skill' }).click();
    await skills.getByRole('cell', { name: 'review, pr' }).waitFor();
    const full = await call('GET', `/api/v1/projects/${projectId}/agents/${agentId}`, { token: owner.token });
    expect(full.body.mcp_servers).to.have.length(1);
    expect(full.body.mcp_servers[0]).to.include({ server_name: 'fetch', command: 'uvx' });
    expect(full.body.mcp_servers[0].args).to.deep.equal(['mcp-server-fetch', '--quiet']);
    expect(full.body.mcp_servers[0].env_keys).to.deep.equal(['TOKEN']);
    expect(full.body.skills.map((k: { skill_name: string; triggers: string[] }) => [k.skill_name, k.triggers])).to.deep.equal([['review-guide', ['review', 'pr']]]);
    expect(await page.content()).to.not.include('mcp-env-secret');
    await snap('agent-detail');

    // Envelope errors are shown as they come: a handle already taken.
    await page.goto(`${base}/p/${projectId}/agents`);
    await page.getByTestId('new-agent').click();
    await page.getByTestId('agent-name').fill('Again');
    await page.getByTestId('agent-handle').fill('form-bot');
    await page.getByTestId('agent-form').getByRole('button', { name: 'Create agent' }).click();
    const err = page.getByTestId('agent-form').getByTestId('error');
    await err.waitFor();
    expect(await err.textContent()).to.match(/^409: .*form-bot/);
    consoleErrors = consoleErrors.filter((e) => !/status of 409/.test(e)); // the refused request's own 409
  });

  it('shows deltas while the session runs, pauses it (Docker says paused), resumes, and it completes', async () => {
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const { owner, projectId, agent } = await projectWithAgent({
      script: {
        token_delay_ms: 60,
        turns: [
          { text: words, tool_calls: [{ name: 'bash', input: { command: 'echo started && sleep 6 && echo finished' } }] },
          { text: 'All done.', tool_calls: [{ name: 'finish', input: { summary: 'done' } }] },
        ],
      },
    });
    // The sessions list is live: it shows the session without a reload.
    await page.goto(`${base}/p/${projectId}/sessions`);
    await page.getByText('No sessions yet — start one below.').waitFor();
    const sid = await startSessionFromUi(projectId, agent.id, 'go');

    // Deltas on screen while the turn is still streaming.
    const text = page.getByTestId('agent-text').first();
    const partial = await waitFor('a partial streamed turn', async () => {
      const [streamed, complete] = await Promise.all([text.getAttribute('data-streamed'), text.getAttribute('data-complete')]);
      return complete === 'false' && streamed && streamed.split(' ').length >= 3 && streamed.length < words.length ? streamed : null;
    }, { timeoutMs: 30_000, everyMs: 50 });
    expect(words.startsWith(partial)).to.equal(true);
    await snap('streaming');

    // The bash tool's live output, then pause while it sleeps.
    await page.getByTestId('tool-output').first().filter({ hasText: 'started' }).waitFor(LONG);
    await page.getByTestId('pause').click();
    await page.locator('[data-testid=session][data-status=paused]').waitFor(LONG);
    // The status is recorded first; the button's action ends when the api answers, once a worker
    // has frozen the container.
    await page.locator('[data-testid=pause][aria-busy=true]').waitFor({ state: 'detached', ...LONG });
    expect(await page.locator('.controls [data-testid=error]').count(), 'pause answered without an error').to.equal(0);
    const conv = await call('GET', `/api/v1/projects/${projectId}/conversations/${sid}`, { token: owner.token });
    expect(conv.body.container_id).to.be.a('string');
    const dockerState = () => execFileSync('docker', ['inspect', '-f', '{{.State.Status}}', conv.body.container_id]).toString().trim();
    await waitFor('Docker to say paused', () => dockerState() === 'paused', 10_000);
    await page.getByTestId('container-state').filter({ hasText: 'paused' }).waitFor(LONG);
    await snap('paused');

    await page.getByTestId('resume').click();
    await page.locator('[data-testid=session][data-status=completed]').waitFor({ timeout: 60_000 });
    await page.getByTestId('agent-text').filter({ hasText: 'All done.' }).waitFor();
    expect(await text.textContent()).to.equal(words);
    const timeline = await page.getByTestId('timeline').textContent();
    for (const s of ['running', 'paused', 'completed']) expect(timeline).to.include(s);
    expect(dockerState()).to.not.equal('paused');

    // The list shows it completed, live.
    await page.getByTestId('tab-sessions').click();
    await page.locator(`tr[data-session="${sid}"] [data-testid=status]`).filter({ hasText: 'completed' }).waitFor();
    await page.getByTestId('filter-running').click();
    await page.getByText('No sessions with these statuses — clear the filter.').waitFor();
  });

  it('keeps streaming across an api restart: no gap and no duplicate on screen', async () => {
    const words = Array.from({ length: 280 }, (_, i) => `w${i}`).join(' ');
    const { projectId, agent } = await projectWithAgent({
      script: { token_delay_ms: 90, turns: [{ text: words, tool_calls: [{ name: 'finish', input: { summary: 'done' } }] }] },
    });
    await startSessionFromUi(projectId, agent.id, 'talk');
    // Every state of the streamed text, as the page saw it.
    await page.evaluate(() => {
      const w = window as unknown as { samples: string[] };
      w.samples = [];
      new MutationObserver(() => {
        const el = document.querySelector('[data-testid=agent-text]');
        const s = el?.getAttribute('data-streamed');
        if (s && w.samples[w.samples.length - 1] !== s) w.samples.push(s);
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const text = page.getByTestId('agent-text').first();
    await waitFor('some words on screen', async () => ((await text.getAttribute('data-streamed')) ?? '').split(' ').length >= 8, { timeoutMs: 30_000, everyMs: 50 });

    // The api goes away mid-stream: the browser's reconnect attempts fail (expected errors).
    tolerated = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|Failed to load resource|WebSocket/;
    const t0 = Date.now();
    await api.stop();
    await page.getByTestId('reconnecting').waitFor();
    await snap('reconnecting');
    const before = (await text.getAttribute('data-streamed')) ?? '';
    api = await startApi(apiEnv());
    await page.getByTestId('reconnecting').waitFor({ state: 'detached', timeout: 30_000 });
    console.log(`      (api down and back in ${Date.now() - t0} ms)`);
    expect(await text.getAttribute('data-complete'), 'the stream resumed before the turn ended').to.equal('false');
    tolerated = null;

    await page.locator('[data-testid=agent-text][data-complete=true]').waitFor({ timeout: 40_000 });
    const streamed = await text.getAttribute('data-streamed');
    expect(streamed, 'the deltas shown add up to the text, once each').to.equal(words);
    expect(await text.textContent()).to.equal(words);
    const samples = await page.evaluate(() => (window as unknown as { samples: string[] }).samples);
    expect(samples.length).to.be.greaterThan(10);
    for (const s of samples) expect(words.startsWith(s), `on screen at some point: …${s.slice(-40)}`).to.equal(true);
    expect(samples.some((s) => s.length > before.length && s.length < words.length), 'text kept streaming after the restart').to.equal(true);
  });

  it('renders every view with its empty state, then with data, by keyboard and on a narrow window', async () => {
    const { owner, projectId } = await newProject();
    await signInWithToken(owner.token);
    const empties: Record<string, RegExp> = {
      sessions: /No agents yet — create one/, agents: /No agents yet — create one/, sandboxes: /No sandboxes yet — start a session/,
      chat: /No agents yet — create one/, hub: /No agents yet — create one/, pairs: /No pair sessions/, members: /owner/,
    };
    for (const [tab, text] of Object.entries(empties)) {
      await page.goto(`${base}/p/${projectId}/${tab}`);
      await page.getByText(text).first().waitFor();
      expect(await page.getByTestId('error').count(), `${tab}: no error`).to.equal(0);
    }
    const agent = await createAgent(base, owner.token, projectId, { name: 'Quick', script: { turns: [{ text: 'Quick answer.', tool_calls: [{ name: 'finish', input: { summary: 'ok' } }] }] } });
    await createAgent(base, owner.token, projectId, { name: 'Second' });
    // The sessions list is live (the project's Socket.IO room): a session started elsewhere
    // appears, and its status moves, without a reload.
    await page.goto(`${base}/p/${projectId}/sessions`);
    await page.getByText('No sessions yet — start one below.').waitFor();
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, project_id: projectId, message: 'hi' } });
    expect(s.status).to.equal(201);
    await page.locator(`tr[data-session="${s.body.id}"] [data-testid=status]`).filter({ hasText: 'completed' }).waitFor(LONG);
    for (const tab of ['agents', 'sandboxes', 'chat', 'hub', 'pairs', 'members']) {
      await page.getByTestId(`tab-${tab}`).click();
      await page.waitForURL(new RegExp(`/${tab}$`));
      await waitFor(`${tab} loaded`, async () => (await page.locator('.loading').count()) === 0);
      expect(await page.getByTestId('error').count(), `${tab}: no error`).to.equal(0);
    }
    // Keyboard: the tabs are links in order; Enter on one opens its view.
    await page.getByTestId('tab-sessions').focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/agents$/);
    // A narrow window: the session view stacks its columns and still shows the transcript.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${base}/p/${projectId}/sessions/${s.body.id}`);
    await page.getByTestId('agent-text').filter({ hasText: 'Quick answer.' }).waitFor();
    await snap('narrow');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    const culprits = await page.evaluate(() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 392).slice(0, 5).map((e) => `${e.tagName}.${e.className}`));
    expect(wide, `no horizontal scrolling (${culprits.join(', ')})`).to.be.at.most(390);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('opens Bull Board for an admin without putting the token in the address bar; a non-admin sees the envelope', async () => {
    const { signUserToken } = await import('../src/http/auth.js');
    await signInWithToken(await signUserToken('test-admin')); // TROUPE_ADMIN_USERS in test/support/env.ts
    const [board] = await Promise.all([ctx.waitForEvent('page'), page.getByTestId('queues-link').click()]);
    await board.waitForLoadState();
    expect(board.url()).to.equal(`${base}/admin/queues`);
    await board.close();

    await page.getByTestId('sign-out').click();
    await signInWithToken((await newUser()).token);
    await page.getByTestId('queues-link').click();
    await page.getByText('The queue dashboard is for admins').waitFor();
    consoleErrors = consoleErrors.filter((e) => !/status of 403/.test(e)); // the refused request's own 403
  });

  it('approves a task in the hub view', async () => {
    const { owner, projectId } = await newProject();
    const asker = await createAgent(base, owner.token, projectId, { name: 'Asker', handle: 'asker', kind: 'external' });
    const doer = await createAgent(base, owner.token, projectId, { name: 'Doer', handle: 'doer', kind: 'external', approval: 'require' });
    const code = await call('POST', '/api/v1/pairing-codes', { token: owner.token, body: { asAgentId: asker.id } });
    expect(code.status).to.equal(201);
    const conn = await call('POST', '/api/v1/connections', { token: owner.token, body: { asAgentId: doer.id, pairingCode: code.body.code } });
    expect(conn.status).to.equal(201);
    const task = await call('POST', '/api/v1/tasks', { token: owner.token, body: { asAgentId: asker.id, toAgentId: doer.id, title: 'Review the plan', message: 'please' } });
    expect(task.status).to.equal(201);
    expect(task.body.approval).to.equal('pending');

    await signInWithToken(owner.token);
    await page.goto(`${base}/p/${projectId}/hub`);
    await page.getByTestId('hub-as').selectOption(doer.id);
    const item = page.locator(`[data-task="${task.body.id}"]`);
    await item.getByText('awaiting approval').waitFor();
    await snap('hub');
    await item.getByTestId('approve').click();
    await item.getByTestId('approve').waitFor({ state: 'detached' });
    const after = await call('GET', `/api/v1/tasks/${task.body.id}?asAgentId=${doer.id}`, { token: owner.token });
    expect(after.body.approval).to.equal('approved');
  });
});
