/**
 * The dashboard's shell: sign-in, the project picker, the navigation of a project's views, the
 * "reconnecting…" banner, and the route table. Each view lives in views/.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { api, auth, type Project } from './api';
import { connection } from './live';
import { match, navigate, usePath } from './router';
import { Link, ErrorBox, useLoad } from './ui';
import { SignIn } from './views/signin';
import { Projects, Members } from './views/projects';
import { Agents, AgentDetail } from './views/agents';
import { Sessions } from './views/sessions';
import { SessionView } from './views/session';
import { Sandboxes } from './views/sandboxes';
import { ChatView } from './views/chat';
import { Hub } from './views/hub';
import { Pairs, PairDetail } from './views/pairs';

function Banner() {
  const [down, setDown] = useState(connection.reconnecting());
  useEffect(() => connection.subscribe(() => setDown(connection.reconnecting())), []);
  if (!down) return null;
  return <div class="banner" role="status" aria-live="assertive" data-testid="reconnecting">reconnecting… the live view resumes where it stopped</div>;
}

const TABS: Array<[string, string]> = [
  ['sessions', 'Sessions'], ['agents', 'Agents'], ['sandboxes', 'Sandboxes'], ['chat', 'Chat'], ['hub', 'Hub'], ['pairs', 'Pairs'], ['members', 'Members'],
];

function ProjectShell({ pid, tab, children }: { pid: string; tab: string; children: preact.ComponentChildren }) {
  const project = useLoad<Project>(() => api.project(pid), [pid]);
  return (
    <div>
      <div class="project-head">
        <h1>{project.data ? project.data.name : 'Project'}</h1>
        {project.data ? <span class="muted">your role: {project.data.role}</span> : null}
      </div>
      <ErrorBox error={project.error} />
      <nav class="tabs" aria-label="Project views">
        {TABS.map(([key, label]) => (
          <Link key={key} href={`/p/${pid}/${key}`} class={key === tab ? 'tab active' : 'tab'} data-testid={`tab-${key}`}>{label}</Link>
        ))}
      </nav>
      {children}
    </div>
  );
}

function Routes({ path }: { path: string }) {
  let m: Record<string, string> | null;
  if ((m = match('/p/:pid/sessions/:sid', path))) return <ProjectShell pid={m.pid} tab="sessions"><SessionView pid={m.pid} sid={m.sid} /></ProjectShell>;
  if ((m = match('/p/:pid/agents/:aid', path))) return <ProjectShell pid={m.pid} tab="agents"><AgentDetail pid={m.pid} aid={m.aid} /></ProjectShell>;
  if ((m = match('/p/:pid/pairs/:id', path))) return <ProjectShell pid={m.pid} tab="pairs"><PairDetail pid={m.pid} id={m.id} /></ProjectShell>;
  if ((m = match('/p/:pid/:tab', path)) || (m = match('/p/:pid', path))) {
    const tab = m.tab ?? 'sessions';
    const pid = m.pid;
    const view = {
      sessions: <Sessions pid={pid} />, agents: <Agents pid={pid} />, sandboxes: <Sandboxes pid={pid} />, chat: <ChatView pid={pid} />,
      hub: <Hub pid={pid} />, pairs: <Pairs pid={pid} />, members: <Members pid={pid} />,
    }[tab];
    return <ProjectShell pid={pid} tab={tab}>{view ?? <p>Unknown view “{tab}”.</p>}</ProjectShell>;
  }
  if (path === '/' || path === '/index.html') return <Projects />;
  return <div><h1>Not found</h1><p>Nothing here. <Link href="/">Back to your projects</Link>.</p></div>;
}

function QueuesLink() {
  const [error, setError] = useState<string | null>(null);
  // Bull Board takes the token once (then an HttpOnly cookie scoped to /admin/queues): it is sent
  // from here, never shown in the address bar or kept in the history.
  const open = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const res = await fetch(`/admin/queues/api/queues`, { headers: { authorization: `Bearer ${auth.token()}` } });
    if (!res.ok) {
      setError(((await res.json().catch(() => null)) as { error?: string } | null)?.error ?? `HTTP ${res.status}`);
      return;
    }
    await fetch(`/admin/queues?access_token=${encodeURIComponent(auth.token() ?? '')}`, { redirect: 'manual', credentials: 'same-origin' });
    window.open('/admin/queues', '_blank', 'noopener');
  };
  return <span><a href="/admin/queues" onClick={open} data-testid="queues-link">Queues (admins)</a>{error ? <span class="error-inline" role="alert"> {error}</span> : null}</span>;
}

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState(Boolean(auth.token()));
  if (!signedIn) return <main class="page"><Banner /><SignIn onSignedIn={() => setSignedIn(true)} /></main>;
  const signOut = () => {
    auth.clear();
    setSignedIn(false);
    navigate('/');
  };
  return (
    <div class="app">
      <a class="skip" href="#content">Skip to content</a>
      <header class="top">
        <Link href="/" class="brand">Troupe</Link>
        <span class="spacer" />
        <QueuesLink />
        <a href="/openapi.json" target="_blank" rel="noopener">API</a>
        <button type="button" class="plain" onClick={signOut} data-testid="sign-out">Sign out</button>
      </header>
      <Banner />
      <main id="content" class="page" tabIndex={-1}>
        <Routes path={path} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);

