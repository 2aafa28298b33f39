/**
 * Pair sessions (seed 000): a generator and a reviewer sharing one workspace. The list, a form to
 * start one (with "drive": the runtime plays both agents' turns), and one pair's turns, score and
 * end. A driven pair is re-read every few seconds while it is active.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Agent, type PairSession as Pair } from '../api';
import { navigate } from '../router';
import { Action, Empty, ErrorBox, Field, Form, Link, Loading, StatusBadge, short, useLoad, when } from '../ui';

export function Pairs({ pid }: { pid: string }) {
  const pairs = useLoad<Pair[]>(() => api.pairs(pid), [pid]);
  const agents = useLoad<Agent[]>(() => api.agents(pid), [pid]);
  const [f, setF] = useState({ generatorId: '', reviewerId: '', task: '', drive: true, maxTurns: '6' });
  const name = (id: string) => agents.data?.find((a) => a.id === id)?.name ?? short(id);
  return (
    <div>
      <h2>Pair sessions</h2>
      <ErrorBox error={pairs.error} />
      {pairs.loading && !pairs.data ? <Loading /> : null}
      {pairs.data && pairs.data.length === 0 ? <Empty>No pair sessions — pick a generator and a reviewer below and press Drive.</Empty> : null}
      {pairs.data?.length ? (
        <table class="table">
          <thead><tr><th>Pair</th><th>Generator → reviewer</th><th>Status</th><th>Turns</th><th>Score</th><th>Created</th></tr></thead>
          <tbody>
            {pairs.data.map((p) => (
              <tr key={p.id}>
                <td><Link href={`/p/${pid}/pairs/${p.id}`} class="mono">{short(p.id)}</Link></td>
                <td>{name(p.generatorId)} → {name(p.reviewerId)}</td>
                <td><StatusBadge status={p.status} /></td>
                <td>{p.turns?.length ?? 0}</td>
                <td>{p.qualityScore ?? '—'}</td>
                <td>{when(p.createdAt as string)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {agents.data && agents.data.length >= 2 ? (
        <section class="card">
          <h3>New pair session</h3>
          <Form submit={f.drive ? 'Drive' : 'Create'} onSubmit={async () => {
            const p = await api.createPair(pid, { generatorId: f.generatorId, reviewerId: f.reviewerId, task: f.task.trim(), drive: f.drive, ...(f.drive ? { maxTurns: Number(f.maxTurns) } : {}) });
            navigate(`/p/${pid}/pairs/${p.id}`);
          }}>
            <div class="row">
              <Field label="Generator"><select required value={f.generatorId} onChange={(e) => setF({ ...f, generatorId: e.currentTarget.value })}><option value="">(choose)</option>{agents.data.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}</select></Field>
              <Field label="Reviewer"><select required value={f.reviewerId} onChange={(e) => setF({ ...f, reviewerId: e.currentTarget.value })}><option value="">(choose)</option>{agents.data.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}</select></Field>
              <Field label="Max turns"><input type="number" min={2} max={100} value={f.maxTurns} onInput={(e) => setF({ ...f, maxTurns: e.currentTarget.value })} /></Field>
            </div>
            <Field label="Task"><textarea rows={2} required value={f.task} onInput={(e) => setF({ ...f, task: e.currentTarget.value })} /></Field>
            <label class="check"><input type="checkbox" checked={f.drive} onChange={(e) => setF({ ...f, drive: e.currentTarget.checked })} /> Drive: the runtime plays both agents' turns</label>
          </Form>
        </section>
      ) : agents.data ? <Empty>A pair needs two agents — <Link href={`/p/${pid}/agents`}>create them</Link>.</Empty> : null}
    </div>
  );
}

export function PairDetail({ pid, id }: { pid: string; id: string }) {
  const pair = useLoad<Pair>(() => api.pair(id), [id]);
  const [score, setScore] = useState('');
  const active = pair.data?.status === 'active';
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => void pair.reload(), 3000);
    return () => clearInterval(t);
  }, [active, pair.reload]);
  if (pair.error) return <ErrorBox error={pair.error} />;
  if (!pair.data) return <Loading what="Loading pair session" />;
  const p = pair.data;
  return (
    <div>
      <div class="section-head">
        <h2>Pair <span class="mono">{short(p.id)}</span> <StatusBadge status={p.status} /></h2>
        <Link href={`/p/${pid}/pairs`}>All pairs</Link>
      </div>
      <section class="card">
        <p>{p.task}</p>
        <p class="muted">Score: {p.qualityScore ?? '—'}{p.drive ? ' · driven' : ''}</p>
        {active ? (
          <div class="row">
            <Field label="Quality score (0–1)"><input type="number" min={0} max={1} step="0.05" value={score} onInput={(e) => setScore(e.currentTarget.value)} /></Field>
            <Action kind="primary" run={async () => { pair.set(await api.endPair(p.id, 'completed', score === '' ? null : Number(score))); }}>End: completed</Action>
            <Action kind="danger" run={async () => { pair.set(await api.endPair(p.id, 'abandoned')); }}>Abandon</Action>
          </div>
        ) : null}
      </section>
      <section class="card">
        <h3>Turns</h3>
        {(p.turns ?? []).length === 0 ? <p class="muted">No turns yet{active ? ' — the generator goes first.' : '.'}</p> : (
          <ol class="turns">
            {(p.turns ?? []).map((t, i) => (
              <li key={t.id ?? i} class={`msg ${t.role === 'review' ? 'user' : 'agent'}`}>
                <div class="who">{t.role} · {short(t.agentId)}{t.sessionId ? <> · <Link href={`/p/${pid}/sessions/${t.sessionId as string}`}>session</Link></> : null}</div>
                <div class="text">{t.content}</div>
              </li>
            ))}
          </ol>
        )}
      </section>
    </div>
  );
}
