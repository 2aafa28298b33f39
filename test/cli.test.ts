/**
 * The `troupe` CLI, built (packages/client/dist/cli.js, as `npx troupe` runs it) and run as a
 * process against the real server: login writes the config file and the environment overrides it,
 * --json output parses, `sessions new --tail` follows a session and exits with its outcome, the
 * session controls and hub task commands act, and errors say what went wrong and what to do.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apiServer, call, newProject, newAgent, sessionWorker, uniq } from './support/harness.js';
import { ROOT } from './support/processes.js';

const CLIENT = path.join(ROOT, 'packages/client');
const CLI = path.join(CLIENT, 'dist/cli.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command without blocking this process (the api under test lives in it). */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

describe('troupe CLI (built, run as a process)', function () {
  this.timeout(120_000);
  let url = '';
  let configHome = '';
  /** The environment of a user with no TROUPE_* settings and their own config dir. */
  const baseEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: configHome, HOME: configHome };
    delete env.TROUPE_URL;
    delete env.TROUPE_TOKEN;
    delete env.TROUPE_PROJECT;
    delete env.FORCE_COLOR;
    return env;
  };
  const troupe = (args: string[], env: NodeJS.ProcessEnv = {}, input?: string) => exec(process.execPath, [CLI, ...args], { ...baseEnv(), ...env }, input);
  const json = (r: Run) => {
    expect(r.code, `exit code; stderr: ${r.stderr}`).to.equal(0);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    // What scripts/setup.sh does: build the package when dist is missing or older than its sources.
    if (!fs.existsSync(CLI) || fs.statSync(CLI).mtimeMs < newest(path.join(CLIENT, 'src'))) {
      const b = await exec('npm', ['run', '--silent', 'client:build'], process.env);
      expect(b.code, b.stderr + b.stdout).to.equal(0);
    }
    await sessionWorker();
    url = (await apiServer()).url;
  });
  beforeEach(() => {
    configHome = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-'));
  });
  afterEach(() => fs.rmSync(configHome, { recursive: true, force: true }));

  it('--help works, and with nothing configured a command says how to log in', async () => {
    const help = await troupe(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.contain('sessions').and.contain('troupe login');
    const sessionsHelp = await troupe(['sessions', '--help']);
    for (const c of ['ls', 'new', 'show', 'tail', 'send', 'pause', 'resume', 'stop', 'interrupt']) expect(sessionsHelp.stdout).to.match(new RegExp(`\\b${c}\\b`));
    const r = await troupe(['projects', 'ls']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Not logged in').and.contain('troupe login').and.contain('TROUPE_TOKEN');
    expect(r.stdout).to.equal('');
  });

  it('login stores URL and token in the config dir (0600); TROUPE_URL/TROUPE_TOKEN override it; a bad token is named with what to do', async () => {
    const { owner } = await newProject();
    const bad = await troupe(['login', '--url', url, '--token', 'wrong']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('HTTP 401').and.contain('troupe login');
    const file = path.join(configHome, 'troupe', 'config.json');
    expect(fs.existsSync(file)).to.equal(false);

    // The token on stdin (kept out of the shell history), as a script would pipe it.
    const ok = await troupe(['login', '--url', url], {}, owner.token + '\n');
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain(file);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({ url, token: owner.token });
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);

    const created = json(await troupe(['projects', 'create', 'from-cli', '--json']));
    expect(created).to.include({ name: 'from-cli', role: 'owner' });
    const list = json(await troupe(['projects', 'ls', '--json']));
    expect(list.map((p: { id: string }) => p.id)).to.include(created.id);
    const table = await troupe(['projects', 'ls']);
    expect(table.stdout).to.match(/^ID\s+NAME\s+ROLE/).and.contain('from-cli');

    // The environment wins over the stored config.
    const overridden = await troupe(['projects', 'ls'], { TROUPE_TOKEN: 'revoked-or-wrong' });
    expect(overridden.code).to.equal(2);
    expect(overridden.stderr).to.contain('The token was refused').and.contain('TROUPE_TOKEN');
    const elsewhere = await troupe(['projects', 'ls'], { TROUPE_URL: 'http://127.0.0.1:9' });
    expect(elsewhere.code).to.equal(2);
    expect(elsewhere.stderr).to.contain('Could not reach Troupe at http://127.0.0.1:9').and.contain('TROUPE_URL');
    const logout = await troupe(['logout']);
    expect(logout.code).to.equal(0);
    expect(fs.existsSync(file)).to.equal(false);
  });

  it('agents create|ls|show, sessions new --tail exits 0 on completion and 1 on failure, --json output parses', async () => {
    const { owner } = await newProject();
    const env = { TROUPE_URL: url, TROUPE_TOKEN: owner.token };
    const script = JSON.stringify({ token_delay_ms: 5, turns: [
      { text: 'I will write the file.', tool_calls: [{ name: 'bash', input: { command: 'echo hello > hello.txt && cat hello.txt' } }] },
      { text: 'Done.', tool_calls: [{ name: 'finish', input: { summary: 'wrote hello.txt' } }] },
    ] });
    const handle = uniq('dev');
    const agent = json(await troupe(['agents', 'create', '--name', 'Dev Bot', '--handle', handle, '--provider', 'scripted', '--image', 'troupe-sandbox-minimal:latest', '--script', script, '--json'], env));
    expect(agent).to.include({ handle, llm_provider: 'scripted' });
    // One project: it is used without --project.
    expect(json(await troupe(['agents', 'ls', '--json'], env)).map((a: { id: string }) => a.id)).to.deep.equal([agent.id]);
    const shown = json(await troupe(['agents', 'show', handle, '--json'], env));
    expect(shown).to.include({ id: agent.id });
    expect(shown.mcp_servers).to.deep.equal([]);
    const missing = await troupe(['agents', 'show', 'nobody'], env);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.contain('HTTP 404').and.contain('troupe agents ls');

    const done = await troupe(['sessions', 'new', handle, 'write', 'hello.txt', '--tail'], env);
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout).to.contain('> write hello.txt').and.contain('I will write the file.').and.contain('▸ bash echo hello > hello.txt')
      .and.contain('hello\n').and.contain('● completed').and.contain('✓ session completed');
    expect(done.stdout).to.not.contain('\u001b['); // not a TTY: no color
    const colored = await troupe(['sessions', 'tail', JSON.parse((await troupe(['sessions', 'ls', '--json'], env)).stdout)[0].id], { ...env, FORCE_COLOR: '1' });
    expect(colored.code).to.equal(0);
    expect(colored.stdout).to.contain('\u001b[32m● completed'); // as on a TTY

    // max_iterations 1 and a model that wants a second step: the session fails, tail exits 1.
    const failing = json(await troupe(['agents', 'create', '--body', JSON.stringify({ name: 'Loop', max_iterations: 1, llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' }, script: { turns: [{ text: 'again', tool_calls: [{ name: 'bash', input: { command: 'true' } }] }, { text: 'again' }] } }), '--json'], env));
    const failed = await troupe(['sessions', 'new', failing.id, 'go', '--tail'], env);
    expect(failed.code).to.equal(1);
    expect(failed.stdout).to.contain('● failed').and.contain('max_iterations');

    // --json everywhere: a started session, its NDJSON tail, the list and the view.
    const started = json(await troupe(['sessions', 'new', handle, 'again', '--json'], env));
    const tail = await troupe(['sessions', 'tail', started.id, '--json'], env);
    expect(tail.code).to.equal(0);
    const events = tail.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.filter((e) => 'id' in e).map((e) => e.id)).to.deep.equal([...Array(events.filter((e) => 'id' in e).length).keys()]);
    expect(events.at(-1).type).to.equal('session_completed');
    const listed = json(await troupe(['sessions', 'ls', '--json', '--agent', handle], env));
    expect(listed.map((s: { id: string }) => s.id)).to.include(started.id);
    const view = json(await troupe(['sessions', 'show', started.id, '--json'], env));
    expect(view).to.include({ id: started.id, status: 'completed' });
    expect(view.messages.map((m: { role: string }) => m.role)).to.include('assistant');
  });

  it('sessions send prints the reply; interrupt, pause, resume and stop act; an illegal one says why', async () => {
    const { owner, projectId } = await newProject();
    const env = { TROUPE_URL: url, TROUPE_TOKEN: owner.token, TROUPE_PROJECT: projectId };
    const a = await newAgent(projectId, owner.token, { script: { turns: [{ text: 'Reply one.' }, { text: 'Reply two.' }] } });
    const s = json(await troupe(['sessions', 'new', a.id, '--json'], env));
    const sent = await troupe(['sessions', 'send', s.id, 'hello', 'there'], env);
    expect(sent.code, sent.stderr).to.equal(0);
    expect(sent.stdout).to.equal('Reply one.\n');
    expect(json(await troupe(['sessions', 'send', s.id, 'more', '--json'], env)).content).to.deep.equal([{ type: 'text', text: 'Reply two.' }]);
    expect(json(await troupe(['sessions', 'interrupt', s.id, '--json'], env)).status).to.equal('idle');
    expect(json(await troupe(['sessions', 'pause', s.id, '--json'], env))).to.include({ id: s.id, status: 'paused' });
    const illegal = await troupe(['sessions', 'interrupt', s.id], env);
    expect(illegal.code).to.equal(2);
    expect(illegal.stderr).to.contain('HTTP 409').and.contain('show');
    expect(json(await troupe(['sessions', 'resume', s.id, '--json'], env)).status).to.equal('running');
    expect(json(await troupe(['sessions', 'stop', s.id, '--json'], env)).status).to.equal('stopped');
    const row = await call('GET', `/api/v1/sessions/${s.id}`, { token: owner.token });
    expect(row.body.status).to.equal('stopped');
  });

  it('tasks send|ls|approve act as an agent of the user (--as)', async () => {
    const { owner, projectId } = await newProject();
    const env = { TROUPE_URL: url, TROUPE_TOKEN: owner.token };
    const a = await newAgent(projectId, owner.token, { kind: 'external', handle: uniq('asker') });
    const b = await newAgent(projectId, owner.token, { kind: 'external', handle: uniq('doer'), approval: 'require' });
    const code = await call('POST', '/api/v1/pairing-codes', { token: owner.token, body: { asAgentId: a.id } });
    expect((await call('POST', '/api/v1/connections', { token: owner.token, body: { pairingCode: code.body.code, asAgentId: b.id } })).status).to.equal(201);

    const task = json(await troupe(['tasks', 'send', b.handle, 'please', 'review', 'this', '--as', a.handle, '--title', 'Review', '--json'], env));
    expect(task).to.include({ title: 'Review', status: 'submitted', fromAgentId: a.id, toAgentId: b.id });
    const mine = json(await troupe(['tasks', 'ls', '--as', b.handle, '--role', 'to', '--json'], env));
    expect(mine.map((t: { id: string; approval: string }) => [t.id, t.approval])).to.deep.equal([[task.id, 'pending']]);
    const human = await troupe(['tasks', 'ls', '--as', b.handle], env);
    expect(human.stdout).to.contain(task.id).and.contain('Review');
    const approved = json(await troupe(['tasks', 'approve', task.id, '--as', b.handle, '--json'], env));
    expect(approved).to.include({ id: task.id, approval: 'approved' });
    const again = await troupe(['tasks', 'approve', task.id, '--as', b.handle], env);
    expect(again.code).to.equal(2);
    expect(again.stderr).to.match(/HTTP 409/);
  });
});
