/**
 * The agent hub (seed 003), acting as one of the project's agents: its connections, pairing codes,
 * and its tasks (both ways) with status, messages, approve, reject and cancel.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Agent, type Connection, type Task, type TaskMessage } from '../api';
import { Action, Empty, ErrorBox, Field, Form, Link, Loading, StatusBadge, short, useLoad, when } from '../ui';

export function Hub({ pid }: { pid: string }) {
  const agents = useLoad<Agent[]>(() => api.agents(pid), [pid]);
  const [as, setAs] = useState('');
  if (agents.error) return <ErrorBox error={agents.error} />;
  if (!agents.data) return <Loading />;
  if (!agents.data.length) return <Empty>No agents yet — <Link href={`/p/${pid}/agents`}>create one</Link>; the hub connects agents.</Empty>;
  const me = as || agents.data[0].id;
  const name = (id: string) => agents.data!.find((a) => a.id === id)?.name ?? short(id);
  return (
    <div>
      <div class="section-head">
        <h2>Hub</h2>
        <Field label="Acting as">
          <select value={me} onChange={(e) => setAs(e.currentTarget.value)} data-testid="hub-as">
            {agents.data.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
      </div>
      <HubFor key={me} me={me} name={name} />
    </div>
  );
}

function HubFor({ me, name }: { me: string; name(id: string): string }) {
  const conns = useLoad<Connection[]>(() => api.connections(me), [me]);
  const tasks = useLoad<Task[]>(() => api.tasks(me), [me]);
  const [code, setCode] = useState<{ code: string; expiresAt: string } | null>(null);
  const [redeem, setRedeem] = useState('');
  const [to, setTo] = useState('');
  const [title, setTitle] = useState('');
  const [message, setMessage] = useState('');
  // Tasks move on their own (sessions work on them): re-read every few seconds.
  useEffect(() => {
    const t = setInterval(() => void tasks.reload(), 4000);
    return () => clearInterval(t);
  }, [tasks.reload]);
  const other = (c: Connection) => c.withAgentName ?? name(c.withAgentId);
  return (
    <div class="hub-grid">
      <section class="card">
        <h3>Connections</h3>
        <ErrorBox error={conns.error} />
        {conns.data && conns.data.length === 0 ? <Empty>No connections — make a pairing code and redeem it as the other agent.</Empty> : null}
        <ul class="plain-list">
          {(conns.data ?? []).map((c) => (
            <li key={c.id}>{other(c)} <span class="muted small">approval {c.approval} · {when(c.createdAt)}</span>{' '}
              <Action kind="danger" run={async () => { await api.disconnect(me, c.id); await conns.reload(); }}>Disconnect</Action></li>
          ))}
        </ul>
        <div class="row">
          <Action run={async () => setCode(await api.pairingCode(me))} busyText="Making">New pairing code</Action>
          {code ? <span class="code" data-testid="pairing-code">{code.code} <span class="muted small">until {new Date(code.expiresAt).toLocaleTimeString()}</span></span> : null}
        </div>
        <Form submit="Connect" onSubmit={async () => { await api.connect(me, redeem.trim()); setRedeem(''); await conns.reload(); }}>
          <Field label="Redeem a pairing code"><input required value={redeem} onInput={(e) => setRedeem(e.currentTarget.value)} /></Field>
        </Form>
      </section>
      <section class="card">
        <div class="section-head"><h3>Tasks</h3><Action run={() => tasks.reload()}>Refresh</Action></div>
        <ErrorBox error={tasks.error} />
        {!tasks.data ? <Loading /> : tasks.data.length === 0 ? <Empty>No tasks — send one to a connected agent below.</Empty> : (
          <ul class="plain-list" data-testid="tasks">
            {tasks.data.map((t) => <TaskItem key={t.id} me={me} t={t} name={name} reload={tasks.reload} />)}
          </ul>
        )}
        <Form submit="Send task" onSubmit={async () => { await api.createTask(me, to, title.trim(), message.trim()); setTitle(''); setMessage(''); await tasks.reload(); }}>
          <div class="row">
            <Field label="To">
              <select required value={to} onChange={(e) => setTo(e.currentTarget.value)}>
                <option value="">(choose)</option>
                {(conns.data ?? []).map((c) => <option key={c.id} value={c.withAgentId}>{other(c)}</option>)}
              </select>
            </Field>
            <Field label="Title"><input required value={title} onInput={(e) => setTitle(e.currentTarget.value)} /></Field>
          </div>
          <Field label="Message"><textarea rows={2} required value={message} onInput={(e) => setMessage(e.currentTarget.value)} /></Field>
        </Form>
      </section>
    </div>
  );
}

function TaskItem({ me, t, name, reload }: { me: string; t: Task; name(id: string): string; reload(): Promise<void> }) {
  const [open, setOpen] = useState(false);
  const mine = t.toAgentId === me;
  const pending = t.approval === 'pending';
  const open_ = !['completed', 'failed', 'cancelled'].includes(t.status);
  return (
    <li class="task" data-testid="task" data-task={t.id} data-status={t.status}>
      <div class="section-head">
        <div><strong>{t.title}</strong> <StatusBadge status={t.status} />{pending ? <span class="badge status-paused">awaiting approval</span> : null}
          <div class="muted small">{name(t.fromAgentId)} → {name(t.toAgentId)} · {when(t.createdAt)}</div></div>
        <div class="controls">
          {mine && pending ? <Action kind="primary" data-testid="approve" busyText="Approving" run={async () => { await api.taskAction(me, t.id, 'approve'); await reload(); }}>Approve</Action> : null}
          {mine && pending ? <Action data-testid="reject" busyText="Rejecting" run={async () => { await api.taskAction(me, t.id, 'reject'); await reload(); }}>Reject</Action> : null}
          {open_ ? <Action kind="danger" data-testid="cancel" busyText="Cancelling" run={async () => { await api.taskAction(me, t.id, 'cancel'); await reload(); }}>Cancel</Action> : null}
          <button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>{open ? 'Hide messages' : 'Messages'}</button>
        </div>
      </div>
      {open ? <TaskMessages me={me} id={t.id} name={name} /> : null}
    </li>
  );
}

function TaskMessages({ me, id, name }: { me: string; id: string; name(id: string): string }) {
  const msgs = useLoad<TaskMessage[]>(() => api.taskMessages(me, id), [me, id]);
  const [text, setText] = useState('');
  return (
    <div class="task-messages">
      <ErrorBox error={msgs.error} />
      {!msgs.data ? <Loading /> : msgs.data.length === 0 ? <p class="muted small">No messages yet.</p> : (
        <ul class="plain-list">{msgs.data.map((m) => <li key={m.id}><strong>{m.fromAgentId ? name(m.fromAgentId) : ''}</strong> {m.content} <span class="muted small">{when(m.createdAt)}</span></li>)}</ul>
      )}
      <Form submit="Send" onSubmit={async () => { await api.sendTaskMessage(me, id, text.trim()); setText(''); await msgs.reload(); }}>
        <Field label="Message"><input required value={text} onInput={(e) => setText(e.currentTarget.value)} /></Field>
      </Form>
    </div>
  );
}
