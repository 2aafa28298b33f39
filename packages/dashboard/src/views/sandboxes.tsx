/** Sandboxes of the project, each with its sessions; pause, resume and delete act on all of them. */
import { useState } from 'preact/hooks';
import { api, type Sandbox, type Session as Session002 } from '../api';
import { Action, Empty, ErrorBox, Link, Loading, StatusBadge, short, useLoad, when } from '../ui';

export function Sandboxes({ pid }: { pid: string }) {
  const list = useLoad<Sandbox[]>(() => api.sandboxes(pid), [pid]);
  return (
    <div>
      <div class="section-head">
        <h2>Sandboxes</h2>
        <Action run={() => list.reload()} busyText="Refreshing">Refresh</Action>
      </div>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading what="Loading sandboxes" /> : null}
      {list.data && list.data.length === 0 ? <Empty>No sandboxes yet — <Link href={`/p/${pid}/sessions`}>start a session</Link>; each gets its own sandbox.</Empty> : null}
      <ul class="cards">
        {(list.data ?? []).map((sb) => <SandboxCard key={sb.id} pid={pid} sb={sb} reload={list.reload} />)}
      </ul>
    </div>
  );
}

function SandboxCard({ pid, sb, reload }: { pid: string; sb: Sandbox; reload(): Promise<void> }) {
  const [open, setOpen] = useState(false);
  const sessions = useLoad<Session002[] | null>(() => (open ? api.sandboxSessions(sb.id) : Promise.resolve(null)), [sb.id, open]);
  return (
    <li class="card">
      <div class="section-head">
        <div><strong class="mono">{short(sb.id)}</strong> <StatusBadge status={sb.state} /> <span class="muted">{String(sb.image ?? '')}</span></div>
        <div class="controls">
          <Action disabled={sb.state !== 'active'} busyText="Pausing" run={async () => { await api.sandboxAction(sb.id, 'pause'); await reload(); }}>Pause</Action>
          <Action disabled={sb.state !== 'paused'} busyText="Resuming" run={async () => { await api.sandboxAction(sb.id, 'resume'); await reload(); }}>Resume</Action>
          <Action kind="danger" disabled={sb.state === 'stopped'} busyText="Deleting" run={async () => { await api.deleteSandbox(sb.id); await reload(); }}>Delete</Action>
        </div>
      </div>
      <div class="muted small">container {sb.container_id ? String(sb.container_id).slice(0, 12) : '—'} · created {when(sb.created_at)}</div>
      <button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>{open ? 'Hide sessions' : 'Show sessions'}</button>
      {open ? (
        sessions.error ? <ErrorBox error={sessions.error} /> : !sessions.data ? <Loading /> : sessions.data.length === 0 ? <p class="muted">No sessions in this sandbox.</p> : (
          <ul class="plain-list">
            {sessions.data.map((s) => <li key={s.id}><Link href={`/p/${pid}/sessions/${s.id}`} class="mono">{short(s.id)}</Link> <StatusBadge status={s.status} /> <span class="muted">{when(s.created_at)}</span></li>)}
          </ul>
        )
      ) : null}
    </li>
  );
}
