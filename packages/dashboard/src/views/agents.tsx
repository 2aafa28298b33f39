/**
 * Agents: the list, one form to create or edit (provider, model, write-only key, script for the
 * scripted provider, limits, sandbox settings), an agent's MCP servers and skills, and agent types.
 */
import { useState } from 'preact/hooks';
import { api, type Agent, type AgentInput, type AgentType, type McpServer, type Skill, type AgentScript as Script } from '../api';
import { navigate } from '../router';
import { Action, Empty, ErrorBox, Field, Form, Link, Loading, useLoad } from '../ui';

const EXAMPLE_SCRIPT: Script = {
  token_delay_ms: 50,
  turns: [
    { text: 'I will write the file.', tool_calls: [{ name: 'bash', input: { command: 'echo hello > hello.txt && cat hello.txt' } }] },
    { text: 'Done.', tool_calls: [{ name: 'finish', input: { summary: 'wrote hello.txt' } }] },
  ],
};

interface Draft {
  name: string; handle: string; agent_type_id: string; provider: Agent['llm_provider']; model: string; base_url: string; key: string;
  system_prompt: string; script: string; max_iterations: string; timeout_minutes: string; approval: 'auto' | 'require';
  image: string; memory_mb: string; cpus: string; pids: string; network: 'none' | 'bridge';
}

function draftOf(a?: Agent): Draft {
  return {
    name: a?.name ?? '', handle: a?.handle ?? '', agent_type_id: a?.agent_type?.id ?? '', provider: a?.llm_provider ?? 'scripted',
    model: a?.llm_model ?? '', base_url: a?.llm_base_url ?? '', key: '', system_prompt: a?.system_prompt ?? '',
    script: a ? (a.script ? JSON.stringify(a.script, null, 2) : '') : JSON.stringify(EXAMPLE_SCRIPT, null, 2),
    max_iterations: a ? String(a.max_iterations) : '', timeout_minutes: a ? String(a.timeout_minutes) : '', approval: a?.approval ?? 'auto',
    image: a?.sandbox?.image ?? '', memory_mb: a?.sandbox?.memory_mb ? String(a.sandbox.memory_mb) : '', cpus: a?.sandbox?.cpus ? String(a.sandbox.cpus) : '', pids: a?.sandbox?.pids ? String(a.sandbox.pids) : '',
    network: a?.sandbox?.network ?? 'none',
  };
}

/** The request body of a draft; on edit, only what changed (the key only when one was typed). */
function bodyOf(d: Draft, before?: Agent): AgentInput {
  const b: AgentInput = {
    name: d.name.trim(), llm_provider: d.provider, llm_model: d.model.trim() || null, llm_base_url: d.base_url.trim() || null,
    system_prompt: d.system_prompt.trim() || null, approval: d.approval, agent_type_id: d.agent_type_id || null,
  };
  if (d.handle.trim()) b.handle = d.handle.trim();
  if (d.key) b.llm_api_key = d.key;
  if (d.max_iterations) b.max_iterations = Number(d.max_iterations);
  if (d.timeout_minutes) b.timeout_minutes = Number(d.timeout_minutes);
  const sandbox: NonNullable<AgentInput['sandbox']> = { network: d.network };
  if (d.image.trim()) sandbox.image = d.image.trim();
  if (d.memory_mb) sandbox.memory_mb = Number(d.memory_mb);
  if (d.cpus) sandbox.cpus = Number(d.cpus);
  if (d.pids) sandbox.pids = Number(d.pids);
  b.sandbox = sandbox;
  if (d.provider === 'scripted') {
    if (d.script.trim()) {
      try {
        b.script = JSON.parse(d.script) as Script;
      } catch (err) {
        throw new Error(`The script is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
    } else b.script = null;
  }
  if (!before) return b;
  // Unchanged fields are left out, so an edit never clears a stored key by accident.
  const out: AgentInput = {};
  const was = bodyOf(draftOf(before)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(b)) if (JSON.stringify(v) !== JSON.stringify(was[k]) || k === 'llm_api_key') (out as Record<string, unknown>)[k] = v;
  return out;
}

function AgentForm({ pid, agent, onSaved }: { pid: string; agent?: Agent; onSaved(a: Agent): void }) {
  const [d, setD] = useState<Draft>(() => draftOf(agent));
  const types = useLoad<AgentType[]>(() => api.agentTypes(pid), [pid]);
  const [note, setNote] = useState<string | null>(null);
  const set = <K extends keyof Draft>(k: K) => (e: Event) => setD({ ...d, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <Form submit={agent ? 'Save agent' : 'Create agent'} data-testid="agent-form" onSubmit={async () => {
      setNote(null);
      if (agent) {
        const body = bodyOf(d, agent);
        if (!Object.keys(body).length) return setNote('Nothing changed.');
        const saved = await api.updateAgent(pid, agent.id, body);
        if (saved.secrets_cleared?.length) setNote(`Cleared with the destination change: ${saved.secrets_cleared.join(', ')}`);
        onSaved(saved);
      } else onSaved(await api.createAgent(pid, bodyOf(d)));
    }}>
      <div class="row">
        <Field label="Name"><input required value={d.name} onInput={set('name')} data-testid="agent-name" /></Field>
        <Field label="Handle" hint="lowercase, unique in the project"><input value={d.handle} onInput={set('handle')} pattern="[a-z0-9][a-z0-9_\-]*" data-testid="agent-handle" /></Field>
        <Field label="Agent type">
          <select value={d.agent_type_id} onChange={set('agent_type_id')} data-testid="agent-type">
            <option value="">(none)</option>
            {(types.data ?? []).map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
          </select>
        </Field>
      </div>
      <div class="row">
        <Field label="Provider">
          <select value={d.provider} onChange={set('provider')} data-testid="agent-provider">
            <option value="scripted">scripted</option><option value="anthropic">anthropic</option><option value="openai">openai</option>
          </select>
        </Field>
        <Field label="Model"><input value={d.model} onInput={set('model')} placeholder={d.provider === 'anthropic' ? 'claude-sonnet-4-6' : ''} /></Field>
        <Field label="Base URL" hint="OpenAI-compatible servers"><input type="url" value={d.base_url} onInput={set('base_url')} /></Field>
        <Field label="API key" hint={agent?.has_llm_api_key ? 'A key is stored (write-only): type one to replace it' : 'Write-only: never shown again'}>
          <input type="password" autoComplete="new-password" value={d.key} onInput={set('key')} data-testid="agent-key" />
        </Field>
      </div>
      {d.provider === 'scripted' ? (
        <Field label="Script (JSON)" hint='{"turns": [{"text": "...", "tool_calls": [{"name": "bash", "input": {"command": "..."}}]}], "token_delay_ms": 50}'>
          <textarea rows={8} class="mono" value={d.script} onInput={set('script')} data-testid="agent-script" />
        </Field>
      ) : null}
      <Field label="System prompt"><textarea rows={3} value={d.system_prompt} onInput={set('system_prompt')} /></Field>
      <fieldset>
        <legend>Limits</legend>
        <div class="row">
          <Field label="Max iterations"><input type="number" min={1} value={d.max_iterations} onInput={set('max_iterations')} /></Field>
          <Field label="Timeout (minutes)"><input type="number" min={1} value={d.timeout_minutes} onInput={set('timeout_minutes')} /></Field>
          <Field label="Tasks need approval">
            <select value={d.approval} onChange={set('approval')}><option value="auto">auto</option><option value="require">require</option></select>
          </Field>
        </div>
      </fieldset>
      <fieldset>
        <legend>Sandbox</legend>
        <div class="row">
          <Field label="Image"><input value={d.image} onInput={set('image')} placeholder="default" /></Field>
          <Field label="Memory (MB)"><input type="number" min={16} value={d.memory_mb} onInput={set('memory_mb')} /></Field>
          <Field label="CPUs"><input type="number" step="0.1" min={0.1} value={d.cpus} onInput={set('cpus')} /></Field>
          <Field label="Processes"><input type="number" min={8} value={d.pids} onInput={set('pids')} /></Field>
          <Field label="Network">
            <select value={d.network} onChange={set('network')}><option value="none">none</option><option value="bridge">bridge</option></select>
          </Field>
        </div>
      </fieldset>
      {note ? <p class="note" role="status">{note}</p> : null}
    </Form>
  );
}

export function Agents({ pid }: { pid: string }) {
  const list = useLoad<Agent[]>(() => api.agents(pid), [pid]);
  const [creating, setCreating] = useState(false);
  return (
    <div>
      <div class="section-head">
        <h2>Agents</h2>
        <button type="button" class="primary" onClick={() => setCreating(!creating)} data-testid="new-agent" aria-expanded={creating}>{creating ? 'Close' : 'New agent'}</button>
      </div>
      {creating ? <section class="card"><AgentForm pid={pid} onSaved={(a) => navigate(`/p/${pid}/agents/${a.id}`)} /></section> : null}
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading what="Loading agents" /> : null}
      {list.data && list.data.length === 0 ? <Empty>No agents yet — create one with “New agent”.</Empty> : null}
      {list.data?.length ? (
        <table class="table" data-testid="agents">
          <thead><tr><th>Agent</th><th>Handle</th><th>Provider</th><th>Model</th><th>Type</th></tr></thead>
          <tbody>
            {list.data.map((a) => (
              <tr key={a.id}>
                <td><Link href={`/p/${pid}/agents/${a.id}`}>{a.name}</Link></td>
                <td class="mono">{a.handle}</td>
                <td>{a.llm_provider}{a.has_llm_api_key ? ' 🔑' : ''}</td>
                <td>{a.llm_model ?? '—'}</td>
                <td>{a.agent_type?.name ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <AgentTypes pid={pid} />
    </div>
  );
}

function AgentTypes({ pid }: { pid: string }) {
  const types = useLoad<AgentType[]>(() => api.agentTypes(pid), [pid]);
  const [name, setName] = useState('');
  const [slug, setSlug] = useState('');
  const [prompt, setPrompt] = useState('');
  return (
    <section class="card">
      <h3>Agent types</h3>
      <ErrorBox error={types.error} />
      {types.data ? (
        <ul class="plain-list">
          {types.data.map((t) => <li key={t.id}><strong>{t.name}</strong> <span class="muted mono">{t.slug}</span>{t.project_id ? '' : <span class="muted"> · built-in</span>}</li>)}
        </ul>
      ) : <Loading />}
      <Form submit="Add agent type" onSubmit={async () => {
        await api.createAgentType(pid, { name: name.trim(), slug: slug.trim(), ...(prompt.trim() ? { default_system_prompt: prompt.trim() } : {}) });
        setName(''); setSlug(''); setPrompt('');
        await types.reload();
      }}>
        <div class="row">
          <Field label="Name"><input required value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
          <Field label="Slug"><input required value={slug} onInput={(e) => setSlug(e.currentTarget.value)} /></Field>
          <Field label="Default system prompt"><input value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} /></Field>
        </div>
      </Form>
    </section>
  );
}

export function AgentDetail({ pid, aid }: { pid: string; aid: string }) {
  const agent = useLoad<Agent>(() => api.agent(pid, aid), [pid, aid]);
  const [message, setMessage] = useState('');
  if (agent.error) return <ErrorBox error={agent.error} />;
  if (!agent.data) return <Loading what="Loading agent" />;
  const a = agent.data;
  return (
    <div data-testid="agent-detail">
      <div class="section-head">
        <h2>{a.name} <span class="muted mono">@{a.handle}</span></h2>
        <Link href={`/p/${pid}/agents`}>All agents</Link>
      </div>
      <section class="card">
        <h3>Start a session</h3>
        <Form submit="Start session" data-testid="start-session" onSubmit={async () => {
          const s = await api.startSession(pid, a.id, message.trim() || undefined);
          navigate(`/p/${pid}/sessions/${s.id}`);
        }}>
          <Field label="First message (optional)"><input value={message} onInput={(e) => setMessage(e.currentTarget.value)} data-testid="start-message" /></Field>
        </Form>
      </section>
      <section class="card">
        <h3>Settings</h3>
        <AgentForm key={a.id} pid={pid} agent={a} onSaved={() => void agent.reload()} />
      </section>
      <McpServers pid={pid} agent={a} reload={agent.reload} />
      <Skills pid={pid} agent={a} reload={agent.reload} />
      <section class="card">
        <h3>Delete</h3>
        <p class="muted">Soft-deletes the agent and stops its sessions.</p>
        <Action kind="danger" run={async () => {
          if (!confirm(`Delete ${a.name}? Its running sessions are stopped.`)) return;
          await api.deleteAgent(pid, a.id);
          navigate(`/p/${pid}/agents`);
        }}>Delete agent</Action>
      </section>
    </div>
  );
}

function McpServers({ pid, agent, reload }: { pid: string; agent: Agent; reload(): Promise<void> }) {
  const [f, setF] = useState({ server_name: '', transport: 'stdio' as McpServer['transport'], command: '', args: '', url: '', env: '' });
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const servers = agent.mcp_servers ?? [];
  return (
    <section class="card">
      <h3>MCP servers</h3>
      {servers.length === 0 ? <Empty>No MCP servers — add one below to give the agent more tools.</Empty> : (
        <table class="table">
          <thead><tr><th>Name</th><th>Transport</th><th>Command / URL</th><th>Env (write-only)</th><th>Enabled</th><th /></tr></thead>
          <tbody>
            {servers.map((s) => (
              <tr key={s.id}>
                <td class="mono">{s.server_name}</td><td>{s.transport}</td>
                <td class="mono">{s.transport === 'http' ? s.url : [s.command, ...(s.args ?? [])].join(' ')}</td>
                <td class="mono">{(s.env_keys ?? []).join(', ') || '—'}</td>
                <td><input type="checkbox" aria-label="Enabled" checked={s.is_enabled} onChange={async (e) => { await api.updateMcp(pid, agent.id, s.id, { is_enabled: e.currentTarget.checked }); await reload(); }} /></td>
                <td><Action kind="danger" run={async () => { await api.deleteMcp(pid, agent.id, s.id); await reload(); }}>Remove</Action></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Form submit="Add MCP server" onSubmit={async () => {
        const env: Record<string, string> = {};
        for (const line of f.env.split('\n').map((l) => l.trim()).filter(Boolean)) {
          const i = line.indexOf('=');
          if (i < 1) throw new Error(`Env lines are KEY=value: “${line}”`);
          env[line.slice(0, i)] = line.slice(i + 1);
        }
        await api.addMcp(pid, agent.id, {
          server_name: f.server_name.trim(), transport: f.transport,
          ...(f.transport === 'stdio' ? { command: f.command.trim(), args: f.args.trim() ? f.args.trim().split(/\s+/) : [] } : { url: f.url.trim() }),
          ...(Object.keys(env).length ? { env } : {}),
        });
        setF({ server_name: '', transport: 'stdio', command: '', args: '', url: '', env: '' });
        await reload();
      }}>
        <div class="row">
          <Field label="Name"><input required value={f.server_name} onInput={set('server_name')} /></Field>
          <Field label="Transport"><select value={f.transport} onChange={set('transport')}><option value="stdio">stdio</option><option value="http">http</option></select></Field>
          {f.transport === 'stdio' ? <>
            <Field label="Command"><input value={f.command} onInput={set('command')} /></Field>
            <Field label="Args"><input value={f.args} onInput={set('args')} placeholder="space separated" /></Field>
          </> : <Field label="URL"><input type="url" value={f.url} onInput={set('url')} /></Field>}
        </div>
        <Field label="Env (KEY=value per line; write-only)"><textarea rows={2} class="mono" value={f.env} onInput={set('env')} /></Field>
      </Form>
    </section>
  );
}

function Skills({ pid, agent, reload }: { pid: string; agent: Agent; reload(): Promise<void> }) {
  const [f, setF] = useState({ skill_name: '', source: 'inline' as Skill['skill_source'], content: '', url: '', triggers: '' });
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const skills = agent.skills ?? [];
  return (
    <section class="card">
      <h3>Skills</h3>
      {skills.length === 0 ? <Empty>No skills — add one below; its triggers pull it into the prompt.</Empty> : (
        <table class="table">
          <thead><tr><th>Name</th><th>Source</th><th>Triggers</th><th>Enabled</th><th /></tr></thead>
          <tbody>
            {skills.map((s) => (
              <tr key={s.id}>
                <td>{s.skill_name}</td><td>{s.skill_source}{s.source_url ? ` (${s.source_url})` : ''}</td><td>{(s.triggers ?? []).join(', ') || '—'}</td>
                <td><input type="checkbox" aria-label="Enabled" checked={s.is_enabled} onChange={async (e) => { await api.updateSkill(pid, agent.id, s.id, { is_enabled: e.currentTarget.checked }); await reload(); }} /></td>
                <td><Action kind="danger" run={async () => { await api.deleteSkill(pid, agent.id, s.id); await reload(); }}>Remove</Action></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Form submit="Add skill" onSubmit={async () => {
        await api.addSkill(pid, agent.id, {
          skill_name: f.skill_name.trim(), skill_source: f.source,
          ...(f.source === 'inline' ? { skill_content: f.content } : { source_url: f.url.trim() }),
          triggers: f.triggers.split(',').map((t) => t.trim()).filter(Boolean),
        });
        setF({ skill_name: '', source: 'inline', content: '', url: '', triggers: '' });
        await reload();
      }}>
        <div class="row">
          <Field label="Name"><input required value={f.skill_name} onInput={set('skill_name')} /></Field>
          <Field label="Source"><select value={f.source} onChange={set('source')}><option value="inline">inline</option><option value="github_url">GitHub URL</option></select></Field>
          <Field label="Triggers"><input value={f.triggers} onInput={set('triggers')} placeholder="review, pr" /></Field>
        </div>
        {f.source === 'inline'
          ? <Field label="Content (markdown)"><textarea rows={4} value={f.content} onInput={set('content')} /></Field>
          : <Field label="URL"><input type="url" value={f.url} onInput={set('url')} /></Field>}
      </Form>
    </section>
  );
}
