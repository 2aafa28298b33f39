#!/usr/bin/env node
/**
 * `troupe`: the command line for the Troupe API, built on the client. Every command takes
 * --json (machine-readable output on stdout, nothing else there); progress and errors go to
 * stderr. Exit codes: 0 success (for `tail`: the session completed), 1 the session failed or was
 * stopped (`tail`, `sessions new --tail`), 2 an error (the message says what and what to do).
 */
import fs from 'node:fs';
import readline from 'node:readline/promises';
import { Command, CommanderError, Option } from 'commander';
import { TroupeClient } from './node-client.js';
import { TroupeConnectionError, TroupeError } from './errors.js';
import { configFile, readConfig, removeConfig, resolveConfig, writeConfig } from './config.js';
import { painter, Progress, table, TailRenderer } from './render.js';
import { VERSION } from './http.js';
import type { StreamEvent } from './stream.js';
import type { BodyOf } from './types.js';

/** A usage or setup error: exit 2 with a message that says what to do. */
class CliError extends Error {}

interface Globals { url?: string; token?: string; project?: string; json?: boolean }

const program = new Command();
program
  .exitOverride()
  .name('troupe')
  .description('Command line for Troupe, the actor-model runtime for AI agents')
  .version(VERSION)
  .option('--url <url>', 'API URL (default: TROUPE_URL, then the one saved by `troupe login`)')
  .option('--token <token>', 'user JWT or agent API key (default: TROUPE_TOKEN, then the saved one)')
  .option('-p, --project <id>', 'project id (default: TROUPE_PROJECT, then the saved one, then your only project)')
  .option('--json', 'print JSON on stdout (for scripts)')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText('after', `
Getting started:
  troupe login --url http://localhost:3000 --token "$(npm run -s token -- --user alice)"
  troupe projects create demo
  troupe agents create --name "Dev Bot" --handle dev-bot --provider scripted
  troupe sessions new dev-bot "write hello.txt" --tail

Exit codes: 0 ok / session completed, 1 session failed or stopped, 2 error.`);

const globals = (): Globals => program.opts<Globals>();

function client(): TroupeClient {
  const c = resolveConfig(globals());
  if (!c.url || !c.token) {
    throw new CliError(`Not logged in: no ${!c.url ? 'API URL' : 'token'} configured.\n` +
      '  Run `troupe login --url http://localhost:3000 --token <token>` (a user token: `npm run -s token -- --user <you>`),\n' +
      '  or set TROUPE_URL and TROUPE_TOKEN.');
  }
  return new TroupeClient({ baseUrl: c.url, token: c.token });
}

/** The project to act in: the flag/env/config, else the caller's only project. */
async function projectId(t: TroupeClient): Promise<string> {
  const c = resolveConfig(globals());
  if (c.project) return c.project;
  const projects = await t.projects.list();
  if (projects.length === 1) return projects[0].id;
  if (!projects.length) throw new CliError('You have no project yet: create one with `troupe projects create <name>`.');
  throw new CliError(`You are in ${projects.length} projects: say which with --project <id> or TROUPE_PROJECT (\`troupe projects ls\` lists them).`);
}

function print(data: unknown, human: () => string): void {
  if (globals().json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else process.stdout.write(human());
}

const paint = painter(process.stdout);

function kv(obj: Record<string, unknown>, keys: string[]): string {
  const w = Math.max(...keys.map((k) => k.length));
  return keys.filter((k) => obj[k] !== undefined).map((k) => `${paint('bold', k.padEnd(w))}  ${typeof obj[k] === 'object' && obj[k] !== null ? JSON.stringify(obj[k]) : String(obj[k] ?? '-')}\n`).join('');
}

/** `{...}` or `@file.json` (or `-` for stdin). */
function jsonArg(value: string): unknown {
  const text = value === '-' ? fs.readFileSync(0, 'utf8') : value.startsWith('@') ? fs.readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`Not valid JSON (${(err as Error).message}): pass inline JSON, @file.json, or - for stdin.`);
  }
}

// --- login ---------------------------------------------------------------------------------------
program.command('login')
  .description('Check a URL and token against the API and save them in your config dir')
  .option('--url <url>', 'API URL', undefined)
  .option('--token <token>', 'user JWT or agent API key (read from stdin or a prompt when left out)')
  .option('-p, --project <id>', 'default project for later commands')
  .action(async (o: { url?: string; token?: string; project?: string }) => {
    const stored = readConfig();
    const url = (o.url ?? globals().url ?? process.env.TROUPE_URL ?? stored.url ?? 'http://localhost:3000').replace(/\/+$/, '');
    let token = o.token ?? globals().token ?? process.env.TROUPE_TOKEN;
    if (!token) {
      if (process.stdin.isTTY) {
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        token = (await rl.question('Token (user JWT or agent API key): ')).trim();
        rl.close();
      } else {
        token = fs.readFileSync(0, 'utf8').trim();
      }
    }
    if (!token) throw new CliError('No token given: pass --token <token>, pipe it on stdin, or set TROUPE_TOKEN.');
    const t = new TroupeClient({ baseUrl: url, token, retries: 0 });
    const projects = await t.projects.list();
    const project = o.project ?? globals().project;
    const file = writeConfig({ url, token, ...(project ? { project } : {}) });
    print({ url, config: file, projects: projects.length }, () => `Logged in to ${url} (${projects.length} project${projects.length === 1 ? '' : 's'}). Saved to ${file}\n`);
  });

program.command('logout').description('Forget the saved URL and token').action(() => {
  const removed = removeConfig();
  print({ removed, config: configFile() }, () => (removed ? `Removed ${configFile()}\n` : 'Nothing saved.\n'));
});

// --- projects ------------------------------------------------------------------------------------
const projects = program.command('projects').description('Projects you are a member of');
projects.command('ls').description('List your projects').action(async () => {
  const list = await client().projects.list();
  print(list, () => table(list, ['id', 'name', 'role', 'created_at']));
});
projects.command('create <name>').description('Create a project (you become its owner)').option('-d, --description <text>')
  .action(async (name: string, o: { description?: string }) => {
    const p = await client().projects.create({ name, ...(o.description ? { description: o.description } : {}) });
    print(p, () => `Created project ${paint('bold', p.name)} ${p.id}\n  use it: --project ${p.id} (or export TROUPE_PROJECT=${p.id})\n`);
  });

// --- agents --------------------------------------------------------------------------------------
const agents = program.command('agents').description('Agents of a project');
agents.command('ls').description('List the project\'s agents').action(async () => {
  const t = client();
  const list = await t.agents.list(await projectId(t));
  print(list, () => table(list.map((a) => ({ ...a, type: a.agent_type?.slug })), ['id', 'handle', 'name', 'kind', 'llm_provider', 'type']));
});
agents.command('show <agent>').description('An agent (id or handle) with its MCP servers and skills').action(async (ref: string) => {
  const t = client();
  const a = await t.agents.get(await projectId(t), ref);
  print(a, () => kv(a, ['id', 'handle', 'name', 'kind', 'llm_provider', 'llm_model', 'llm_base_url', 'has_llm_api_key', 'approval', 'max_iterations', 'timeout_minutes', 'sandbox', 'webhook_url', 'created_at'])
    + `${paint('bold', 'mcp_servers')}  ${(a.mcp_servers ?? []).map((m) => m.server_name).join(', ') || '-'}\n`
    + `${paint('bold', 'skills')}  ${(a.skills ?? []).map((s) => s.skill_name).join(', ') || '-'}\n`);
});
agents.command('create').description('Create an agent')
  .option('--name <name>', 'display name (required unless in --body)')
  .option('--handle <handle>', 'handle, used instead of the id in commands')
  .addOption(new Option('--provider <provider>', 'model provider').choices(['anthropic', 'openai', 'scripted']))
  .option('--model <model>', 'model name')
  .option('--base-url <url>', 'OpenAI-compatible server URL')
  .option('--api-key <key>', 'model API key (write-only; or set it in --body)')
  .option('--type <slug>', 'agent type: developer, reviewer, assistant, or a project one')
  .option('--system-prompt <text>')
  .option('--image <image>', 'sandbox image')
  .option('--script <json>', 'scripted provider script: JSON, @file.json or -')
  .option('--body <json>', 'the whole request body (JSON, @file.json or -); the flags above override it')
  .action(async (o: Record<string, string | undefined>) => {
    const body = (o.body ? jsonArg(o.body) : {}) as Record<string, unknown>;
    const set = (k: string, v: unknown) => v !== undefined && (body[k] = v);
    set('name', o.name);
    set('handle', o.handle);
    set('llm_provider', o.provider);
    set('llm_model', o.model);
    set('llm_base_url', o.baseUrl);
    set('llm_api_key', o.apiKey);
    set('agent_type_id', o.type);
    set('system_prompt', o.systemPrompt);
    if (o.image) body.sandbox = { ...(body.sandbox as object | undefined), image: o.image };
    if (o.script) body.script = jsonArg(o.script);
    if (!body.name) throw new CliError('An agent needs a name: --name "Dev Bot" (and usually --handle dev-bot).');
    const t = client();
    const a = await t.agents.create(await projectId(t), body as BodyOf<'/api/v1/projects/{projectId}/agents', 'post'>);
    print(a, () => `Created agent ${paint('bold', a.handle)} ${a.id} (${a.llm_provider})\n  start a session: troupe sessions new ${a.handle} "your message" --tail\n`);
  });

// --- sessions ------------------------------------------------------------------------------------
const sessions = program.command('sessions').description('Sessions (conversations): start, follow, steer');
sessions.command('ls').description('List sessions, newest first')
  .option('--agent <agent>', 'only this agent\'s (id or handle)')
  .addOption(new Option('--status <status>', 'filter (seed 001 words)').choices(['created', 'active', 'paused', 'completed', 'stopped', 'failed']))
  .action(async (o: { agent?: string; status?: 'active' }) => {
    const t = client();
    const c = resolveConfig(globals());
    const { sessions: list } = await t.sessions.v001.list({ ...(c.project ? { project_id: c.project } : {}), ...(o.agent ? { agent_id: o.agent } : {}), ...(o.status ? { status: o.status } : {}) });
    print(list, () => table(list, ['id', 'agent_id', 'status', 'message_count', 'last_active', 'created_at']));
  });
sessions.command('new <agent> [message...]').description('Start a session with an agent (id or handle), in its own sandbox')
  .option('--tail', 'follow it until it ends (exit 0 completed, 1 failed or stopped)')
  .option('--until-idle', 'with --tail: also stop when the agent ends its turn and waits')
  .option('--metadata <json>', 'metadata (JSON, @file.json or -)')
  .action(async (agent: string, words: string[], o: { tail?: boolean; untilIdle?: boolean; metadata?: string }) => {
    const t = client();
    const project = await projectId(t);
    const message = words.join(' ');
    const s = await t.sessions.create({ agent_id: agent, project_id: project, ...(message ? { message } : {}), ...(o.metadata ? { metadata: jsonArg(o.metadata) as Record<string, unknown> } : {}) });
    if (!o.tail) return print(s, () => `Started session ${paint('bold', s.id)} (${s.status})\n  follow it: troupe sessions tail ${s.id}\n`);
    if (!globals().json) process.stderr.write(`Started session ${s.id}\n`);
    process.exitCode = await tail(t, s.id, { untilIdle: o.untilIdle });
  });
sessions.command('show <session>').description('A session with its newest messages')
  .option('-n, --limit <n>', 'messages to show', '20')
  .action(async (id: string, o: { limit: string }) => {
    const s = await client().sessions.get(id, { limit: Number(o.limit) });
    print(s, () => kv(s, ['id', 'agent_id', 'project_id', 'status', 'state', 'error', 'sandbox_id', 'container_id', 'created_at', 'updated_at']) + '\n'
      + s.messages.map((m) => `${paint(m.role === 'user' ? 'green' : 'bold', m.role)}: ${m.content.map((b) => (b.type === 'text' ? b.text : b.type === 'tool_use' ? paint('cyan', `[${b.name} ${JSON.stringify(b.input)}]`) : b.type === 'tool_result' ? paint('gray', `[result] ${String(b.content).slice(0, 300)}`) : `[${b.type}]`)).join(' ')}\n`).join(''));
  });
sessions.command('tail <session>').description('Follow a session live: text as it streams, tool calls and output, status changes')
  .option('--from <index>', 'start after this event_index (default: the whole session)')
  .option('--until-idle', 'also stop when the agent ends its turn and waits (exit 0)')
  .action(async (id: string, o: { from?: string; untilIdle?: boolean }) => {
    process.exitCode = await tail(client(), id, { from: o.from !== undefined ? Number(o.from) : undefined, untilIdle: o.untilIdle });
  });
sessions.command('send <session> <message...>').description('Send a message and print the agent\'s reply')
  .option('--no-wait', 'return once the message is recorded')
  .action(async (id: string, words: string[], o: { wait: boolean }) => {
    const t = client();
    const text = words.join(' ');
    if (!o.wait) {
      const a = await t.sessions.sendNoWait(id, text);
      return print(a, () => `Sent (event ${a.event_index}); follow it: troupe sessions tail ${id} --from ${a.event_index}\n`);
    }
    const progress = globals().json ? undefined : new Progress().start('waiting for the reply');
    try {
      const reply = await t.sessions.send(id, text);
      progress?.stop();
      print(reply, () => reply.content.filter((b) => b.type === 'text').map((b) => (b as { text: string }).text).join('\n') + '\n');
    } finally {
      progress?.stop();
    }
  });
for (const action of ['pause', 'resume', 'stop'] as const) {
  sessions.command(`${action} <session>`).description({ pause: 'Pause (the sandbox is frozen)', resume: 'Resume a paused session', stop: 'Stop for good (the sandbox is removed)' }[action])
    .action(async (id: string) => {
      const t = client();
      const s = await t.sessions.get(id, { limit: 1 });
      const r = await t.sessions[action](s.project_id, id);
      print({ id, ...r }, () => `${id} ${r.status}\n`);
    });
}
sessions.command('interrupt <session>').description('Abort the current model call or tool; the session waits, sandbox intact')
  .action(async (id: string) => {
    const s = await client().sessions.interrupt(id);
    print(s, () => `${id} ${s.status}\n`);
  });

/** Follows a session; resolves with the exit code (0 completed / at rest with --until-idle, 1 failed or stopped). */
async function tail(t: TroupeClient, id: string, o: { from?: number; untilIdle?: boolean }): Promise<number> {
  const json = globals().json;
  const renderer = new TailRenderer();
  const progress = new Progress();
  let outcome: string | undefined;
  const stream = t.sessions.stream(id, {
    lastEventId: o.from,
    onReconnect: ({ lastEventId, reason }) => { if (!json) progress.start(`connection lost (${reason}); resuming after event ${lastEventId}`); },
  });
  for await (const e of stream as AsyncIterable<StreamEvent>) {
    progress.stop();
    if (json) process.stdout.write(JSON.stringify(e) + '\n');
    else renderer.render(e);
    if (e.type === 'status') {
      const st = String(e.data.payload?.status);
      if (['completed', 'failed', 'stopped'].includes(st)) outcome = st;
      if (st === 'queued' && !json) {
        progress.start('waiting for a worker to pick the session up');
      }
      if (o.untilIdle && (st === 'idle' || st === 'paused')) {
        outcome = st;
        break;
      }
    }
    if (e.type === 'tool_use_start' && !json) progress.start(`running ${e.data.name}`);
    if (e.type === 'session_completed') outcome = 'completed';
    if (e.type === 'session_failed') outcome = 'failed';
  }
  progress.stop();
  renderer.finish();
  if (!outcome) {
    // The stream ended with nothing left to send (a finished session, resumed past its end).
    outcome = (await t.sessions.get(id, { limit: 1 })).status;
  }
  return outcome === 'completed' || outcome === 'idle' || outcome === 'paused' ? 0 : 1;
}

// --- tasks ---------------------------------------------------------------------------------------
const tasks = program.command('tasks').description('Agent-to-agent tasks (the hub). With a user token, say which agent acts: --as <agent>');
const asOption = () => new Option('--as <agent>', 'the agent to act as (id or handle; needed with a user token)');
tasks.command('ls').description('Tasks of the acting agent')
  .addOption(asOption())
  .addOption(new Option('--role <role>', 'from: it asked; to: it was asked').choices(['from', 'to']))
  .option('--status <status>')
  .action(async (o: { as?: string; role?: 'from' | 'to'; status?: 'submitted' }) => {
    const list = await client().hub.tasks.list({ ...(o.as ? { asAgentId: o.as } : {}), ...(o.role ? { role: o.role } : {}), ...(o.status ? { status: o.status } : {}) });
    print(list, () => table(list, ['id', 'title', 'status', 'fromAgentId', 'toAgentId', 'approval', 'updatedAt']));
  });
tasks.command('send <to-agent> <message...>').description('Send a task to a connected agent (id, or handle among the connected ones)')
  .addOption(asOption())
  .option('--title <title>', 'task title (default: the start of the message)')
  .action(async (to: string, words: string[], o: { as?: string; title?: string }) => {
    const message = words.join(' ');
    const task = await client().hub.tasks.create({ toAgentId: to, title: o.title ?? message.slice(0, 80), message, ...(o.as ? { asAgentId: o.as } : {}) });
    print(task, () => `Sent task ${paint('bold', task.id)} to ${task.toAgentId} (${task.status})\n`);
  });
tasks.command('approve <task>').description('Approve a task waiting for approval (as its target agent)')
  .addOption(asOption())
  .action(async (id: string, o: { as?: string }) => {
    const task = await client().hub.tasks.approve(id, o.as ? { asAgentId: o.as } : {});
    print(task, () => `Approved task ${task.id} (${task.status})\n`);
  });

// --- errors --------------------------------------------------------------------------------------
function hint(err: TroupeError): string {
  switch (err.status) {
    case 400: return 'The request was refused as invalid: check the values above (`--help` lists each command\'s options).';
    case 401: return 'The token was refused (wrong, expired or revoked): run `troupe login` again, or set TROUPE_TOKEN (a user token: `npm run -s token -- --user <you>`).';
    case 403: return 'Your token may not do this: a viewer cannot write, and an agent API key cannot manage agents or projects.';
    case 404: return 'Not found, or not visible to you: check the id (`troupe projects ls`, `troupe agents ls`, `troupe sessions ls`) and the project (--project).';
    case 409: return 'The object is not in a state that allows this (e.g. resuming a session that is not paused): look at it with `show`.';
    case 422: return 'The server could not do it with what was given.';
    case 429: return `Rate limited: try again${err.retryAfter ? ` in ${err.retryAfter} s` : ' later'}.`;
    default: return err.status >= 500 ? 'The server had a problem: try again; if it persists, look at the server\'s log.' : '';
  }
}

async function main() {
  // `troupe ... | head`: a reader that goes away is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const red = painter(process.stderr);
    if (err instanceof CommanderError) {
      // --help and --version exit 0; a usage error has been printed by commander already.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof TroupeConnectionError) {
      process.stderr.write(`${red('red', 'error:')} ${err.message}\n  Start it with \`npm start\`, or point TROUPE_URL / \`troupe login --url\` at the right place.\n`);
    } else if (err instanceof TroupeError) {
      process.stderr.write(`${red('red', 'error:')} ${err.message} (HTTP ${err.status})\n`);
      for (const d of err.details ?? []) process.stderr.write(`  - ${typeof d === 'object' && d ? `${(d as { path?: string }).path ?? ''} ${(d as { message?: string }).message ?? JSON.stringify(d)}` : String(d)}\n`);
      const h = hint(err);
      if (h) process.stderr.write(`  ${h}\n`);
    } else if (err instanceof CliError) {
      process.stderr.write(`${red('red', 'error:')} ${err.message}\n`);
    } else {
      process.stderr.write(`${red('red', 'error:')} ${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = 2;
  }
}

await main();
