/**
 * The project's sessions, live: loaded once per agent (seed 004 conversations), then kept current
 * by the project's Socket.IO room (new conversations, status changes); re-read after a reconnect.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, SESSION_STATUSES, type Agent, type Conversation, type SessionStatus } from '../api';
import { watchProject } from '../live';
import { navigate } from '../router';
import { Empty, ErrorBox, Field, Form, Link, Loading, StatusBadge, short, useLoad, when } from '../ui';

async function loadAll(pid: string): Promise<{ agents: Agent[]; sessions: Conversation[] }> {
  const agents = await api.agents(pid);
  const lists = await Promise.all(agents.map((a) => api.conversations(pid, a.id, 100).then((r) => r.conversations)));
  const sessions = lists.flat().sort((a, b) => b.created_at.localeCompare(a.created_at));
  return { agents, sessions };
}

export function Sessions({ pid }: { pid: string }) {
  const data = useLoad(() => loadAll(pid), [pid]);
  const [filter, setFilter] = useState<Set<SessionStatus>>(new Set());
  const [feedError, setFeedError] = useState<string | null>(null);
  // Status changes are applied in place (no reload), over the loaded list.
  const [live, setLive] = useState<Record<string, SessionStatus>>({});

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reloadSoon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void data.reload(), 200);
    };
    const stop = watchProject(pid, {
      onStarted: reloadSoon,
      onResync: () => {
        setLive({});
        reloadSoon();
      },
      onError: setFeedError,
      onStatus: (e) => setLive((l) => ({ ...l, [e.conversation_id]: e.status as SessionStatus })),
    });
    return () => {
      clearTimeout(timer);
      stop();
    };
  }, [pid, data.reload]);

  const shown = useMemo(() => {
    const rows = (data.data?.sessions ?? []).map((s) => ({ ...s, status: live[s.id] ?? s.status }));
    return filter.size ? rows.filter((s) => filter.has(s.status)) : rows;
  }, [data.data, live, filter]);
  const agentName = (id: string) => data.data?.agents.find((a) => a.id === id)?.name ?? short(id);

  const toggle = (s: SessionStatus) => {
    const next = new Set(filter);
    if (next.has(s)) next.delete(s);
    else next.add(s);
    setFilter(next);
  };

  return (
    <div>
      <div class="section-head">
        <h2>Sessions</h2>
        <span class="muted live-dot" title="Updated live over Socket.IO">live</span>
      </div>
      <div class="filters" role="group" aria-label="Filter by status">
        {SESSION_STATUSES.map((s) => (
          <button key={s} type="button" class={filter.has(s) ? 'chip on' : 'chip'} aria-pressed={filter.has(s)} onClick={() => toggle(s)} data-testid={`filter-${s}`}>{s}</button>
        ))}
        {filter.size ? <button type="button" class="chip" onClick={() => setFilter(new Set())}>all</button> : null}
      </div>
      {feedError ? <div class="error" role="alert">Live updates: {feedError}</div> : null}
      <ErrorBox error={data.error} />
      {data.loading && !data.data ? <Loading what="Loading sessions" /> : null}
      {data.data && data.data.agents.length === 0 ? <Empty>No agents yet — <Link href={`/p/${pid}/agents`}>create one</Link>, then start a session.</Empty> : null}
      {data.data && data.data.agents.length > 0 && shown.length === 0 ? (
        <Empty>{filter.size ? 'No sessions with these statuses — clear the filter.' : 'No sessions yet — start one below.'}</Empty>
      ) : null}
      {shown.length ? (
        <table class="table" data-testid="sessions">
          <thead><tr><th>Session</th><th>Agent</th><th>Status</th><th>Trigger</th><th>Iterations</th><th>Started</th></tr></thead>
          <tbody>
            {shown.map((s) => (
              <tr key={s.id} data-session={s.id}>
                <td><Link href={`/p/${pid}/sessions/${s.id}`} class="mono">{short(s.id)}</Link></td>
                <td>{agentName(s.agent_id)}</td>
                <td><StatusBadge status={s.status} /></td>
                <td>{s.trigger_type}</td>
                <td>{s.iteration_count}</td>
                <td>{when(s.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {data.data?.agents.length ? <StartSession pid={pid} agents={data.data.agents} /> : null}
    </div>
  );
}

function StartSession({ pid, agents }: { pid: string; agents: Agent[] }) {
  const [agent, setAgent] = useState(agents[0]?.id ?? '');
  const [message, setMessage] = useState('');
  return (
    <section class="card">
      <h3>Start a session</h3>
      <Form submit="Start session" onSubmit={async () => {
        const s = await api.startSession(pid, agent, message.trim() || undefined);
        navigate(`/p/${pid}/sessions/${s.id}`);
      }}>
        <div class="row">
          <Field label="Agent"><select value={agent} onChange={(e) => setAgent(e.currentTarget.value)}>{agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}</select></Field>
          <Field label="First message (optional)"><input value={message} onInput={(e) => setMessage(e.currentTarget.value)} /></Field>
        </div>
      </Form>
    </section>
  );
}
