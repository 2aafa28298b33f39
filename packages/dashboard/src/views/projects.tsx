/** Projects (the start page) and a project's members. */
import { useState } from 'preact/hooks';
import { api, type Member, type Project, type Role } from '../api';
import { navigate } from '../router';
import { Action, Empty, ErrorBox, Field, Form, Link, Loading, useLoad, when } from '../ui';

export function Projects() {
  const list = useLoad<Project[]>(() => api.projects(), []);
  const [name, setName] = useState('');
  return (
    <div>
      <h1>Projects</h1>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading what="Loading projects" /> : null}
      {list.data && list.data.length === 0 ? <Empty>No projects yet — create one below.</Empty> : null}
      {list.data && list.data.length ? (
        <ul class="cards" data-testid="projects">
          {list.data.map((p) => (
            <li key={p.id} class="card">
              <Link href={`/p/${p.id}/sessions`}><strong>{p.name}</strong></Link>
              <div class="muted">{p.role} · created {when(p.created_at)}</div>
              {p.description ? <p>{p.description}</p> : null}
            </li>
          ))}
        </ul>
      ) : null}
      <section class="card">
        <h2>New project</h2>
        <Form submit="Create project" data-testid="project-form" onSubmit={async () => {
          const p = await api.createProject(name.trim());
          navigate(`/p/${p.id}/agents`);
        }}>
          <Field label="Name"><input required value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="project-name" /></Field>
        </Form>
      </section>
    </div>
  );
}

const ROLES: Role[] = ['owner', 'admin', 'member', 'viewer'];

export function Members({ pid }: { pid: string }) {
  const list = useLoad<Member[]>(() => api.members(pid), [pid]);
  const [user, setUser] = useState('');
  const [role, setRole] = useState<Role>('member');
  return (
    <div>
      <h2>Members</h2>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && list.data.length === 0 ? <Empty>No members — add one below.</Empty> : null}
      {list.data?.length ? (
        <table class="table">
          <thead><tr><th>Who</th><th>Kind</th><th>Role</th><th>Since</th><th /></tr></thead>
          <tbody>
            {list.data.map((m) => (
              <tr key={m.id}>
                <td>{m.user_id ?? m.agent_id}</td>
                <td>{m.member_type}</td>
                <td>
                  <select aria-label="Role" value={m.role} onChange={async (e) => {
                    try {
                      await api.updateMember(pid, m.id, e.currentTarget.value as Role);
                    } finally {
                      await list.reload();
                    }
                  }}>
                    {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                  </select>
                </td>
                <td>{when(m.created_at)}</td>
                <td>{m.member_type === 'user' ? <Action kind="danger" run={async () => { await api.removeMember(pid, m.id); await list.reload(); }}>Remove</Action> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <section class="card">
        <h3>Add a member</h3>
        <Form submit="Add member" onSubmit={async () => { await api.addMember(pid, user.trim(), role); setUser(''); await list.reload(); }}>
          <div class="row">
            <Field label="User id"><input required value={user} onInput={(e) => setUser(e.currentTarget.value)} /></Field>
            <Field label="Role">
              <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>{ROLES.map((r) => <option key={r} value={r}>{r}</option>)}</select>
            </Field>
          </div>
        </Form>
      </section>
    </div>
  );
}
