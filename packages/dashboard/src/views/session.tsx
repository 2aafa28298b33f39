/**
 * One session, live: its status timeline, the model's text as it streams, each tool call with its
 * input and live output, the paged event log, the container, the controls and a message box.
 *
 * The transcript is built from the session's SSE stream (live.ts), read from the start of its log
 * and resumed from the last durable event after any drop, so nothing is shown twice or missed.
 * A turn's text is the concatenation of its deltas (`data-streamed`, kept as received) until its
 * durable message arrives; then the durable text is shown.
 */
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import { api, isTerminal, type Conversation, type Sandbox, type SessionEvent, type SessionStatus } from '../api';
import { streamSession, type TextDelta, type ToolOutputDelta, type ToolUseStart } from '../live';
import { Action, ErrorBox, Link, Loading, StatusBadge, short, useLoad, when } from '../ui';

type Block =
  | { kind: 'user'; key: string; text: string }
  | { kind: 'text'; key: string; turn: number; activation: number; streamed: string; durable?: string }
  | { kind: 'tool'; key: string; id: string; name: string; input: unknown; output: string; activation: number; result?: { content: unknown; is_error?: boolean; exit_code?: number } }
  | { kind: 'error'; key: string; text: string };

interface Transcript { blocks: Block[]; timeline: Array<{ status: string; at: string; reason?: string; index: number }>; last: number }

const textOf = (p: any): string => (typeof p?.message === 'string' ? p.message : typeof p?.text === 'string' ? p.text : JSON.stringify(p));
const contentText = (c: unknown): string => {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map((b: any) => (typeof b?.text === 'string' ? b.text : JSON.stringify(b))).join('');
  return JSON.stringify(c, null, 2);
};

export function SessionView({ pid, sid }: { pid: string; sid: string }) {
  const conv = useLoad<Conversation>(() => api.conversation(pid, sid), [pid, sid]);
  const t = useRef<Transcript>({ blocks: [], timeline: [], last: -1 });
  const [, bump] = useReducer((n: number) => n + 1, 0);
  const [status, setStatus] = useState<SessionStatus | null>(null);
  const [streamError, setStreamError] = useState<string | null>(null);
  const [ended, setEnded] = useState(false);
  const [eventsVersion, setEventsVersion] = useState(0);

  useEffect(() => {
    t.current = { blocks: [], timeline: [], last: -1 };
    setEnded(false);
    setStreamError(null);
    const tr = () => t.current;
    const textBlock = (turn: number) => tr().blocks.find((b): b is Extract<Block, { kind: 'text' }> => b.kind === 'text' && b.turn === turn && b.durable === undefined);
    const toolBlock = (id: string) => tr().blocks.find((b): b is Extract<Block, { kind: 'tool' }> => b.kind === 'tool' && b.id === id);
    let frame = 0;
    let refresh: ReturnType<typeof setTimeout> | undefined;
    // The conversation row and the event log are re-read once a burst of durable events settles.
    const refreshSoon = () => {
      clearTimeout(refresh);
      refresh = setTimeout(() => setEventsVersion((v) => v + 1), 400);
    };
    // Many deltas a second: one render per animation frame.
    const render = () => {
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; bump(0); });
    };
    const stop = streamSession(sid, -1, {
      onTextDelta(d: TextDelta) {
        const b = textBlock(d.turn);
        if (!b) tr().blocks.push({ kind: 'text', key: `t${d.activation}:${d.turn}`, turn: d.turn, activation: d.activation, streamed: d.delta });
        else if (d.activation > b.activation) {
          // The turn is being asked again (after a pause or a crash): its text starts over.
          b.activation = d.activation;
          b.streamed = d.delta;
        } else b.streamed += d.delta;
        render();
      },
      onToolStart(d: ToolUseStart) {
        if (!toolBlock(d.tool_use_id)) tr().blocks.push({ kind: 'tool', key: `u${d.tool_use_id}`, id: d.tool_use_id, name: d.name, input: d.input, output: '', activation: d.activation });
        render();
      },
      onToolOutput(d: ToolOutputDelta) {
        let b = toolBlock(d.tool_use_id);
        if (!b) {
          b = { kind: 'tool', key: `u${d.tool_use_id}`, id: d.tool_use_id, name: '…', input: undefined, output: '', activation: d.activation };
          tr().blocks.push(b);
        }
        if (d.activation > b.activation) {
          // The call is run again (after a pause or a crash, before its result was recorded).
          b.activation = d.activation;
          b.output = '';
        }
        b.output += d.chunk;
        render();
      },
      onDurable(name: string, e: SessionEvent) {
        tr().last = e.event_index;
        const p = e.payload ?? {};
        if (name === 'user_message') tr().blocks.push({ kind: 'user', key: `e${e.event_index}`, text: textOf(p) });
        else if (name === 'text_complete') {
          const b = typeof p.turn === 'number' ? textBlock(p.turn) : undefined;
          if (b) b.durable = textOf(p);
          else if (textOf(p)) tr().blocks.push({ kind: 'text', key: `e${e.event_index}`, turn: p.turn ?? -1, activation: 0, streamed: '', durable: textOf(p) });
        } else if (name === 'tool_use_complete') {
          const b = toolBlock(p.id);
          if (b) {
            b.name = p.name;
            b.input = p.input;
          } else tr().blocks.push({ kind: 'tool', key: `u${p.id}`, id: p.id, name: p.name, input: p.input, output: '', activation: 0 });
        } else if (name === 'tool_result') {
          const b = toolBlock(p.tool_use_id);
          if (b) b.result = { content: p.content, is_error: p.is_error, exit_code: p.exit_code };
        } else if (name === 'session_error') tr().blocks.push({ kind: 'error', key: `e${e.event_index}`, text: textOf(p) });
        else if (name === 'status') {
          tr().timeline.push({ status: p.status, at: e.created_at, reason: p.reason, index: e.event_index });
          setStatus(p.status);
        }
        refreshSoon();
        render();
      },
      onEnd: () => setEnded(true),
      onError: setStreamError,
    });
    return () => {
      cancelAnimationFrame(frame);
      clearTimeout(refresh);
      stop();
    };
  }, [sid]);

  // The conversation row (container, iterations) is re-read as durable events come in.
  useEffect(() => {
    if (eventsVersion) void conv.reload();
  }, [eventsVersion]);
  const agentId = conv.data?.agent_id;
  const agent = useLoad(() => (agentId ? api.agent(pid, agentId) : Promise.resolve(null)), [pid, agentId]);

  if (conv.error) return <ErrorBox error={conv.error} />;
  if (!conv.data) return <Loading what="Loading session" />;
  const c = conv.data;
  const current = (status ?? c.status) as SessionStatus;
  const { blocks, timeline } = t.current;

  return (
    <div class="session" data-testid="session" data-status={current} data-ended={ended ? 'true' : 'false'}>
      <div class="section-head">
        <h2>Session <span class="mono">{short(c.id)}</span> <StatusBadge status={current} /></h2>
        <Link href={`/p/${pid}/sessions`}>All sessions</Link>
      </div>
      <div class="session-grid">
        <div class="main-col">
          <Controls pid={pid} conv={c} status={current} onChanged={(s) => setStatus(s)} />
          {streamError ? <div class="error" role="alert">Stream: {streamError}</div> : null}
          <section class="card transcript" aria-label="Transcript" aria-live="polite">
            <h3>Transcript</h3>
            {blocks.length === 0 ? <p class="muted">{isTerminal(current) ? 'This session said nothing.' : 'Waiting for the agent…'}</p> : null}
            {blocks.map((b) => <BlockView key={b.key} b={b} status={current} />)}
          </section>
          <MessageBox pid={pid} sid={sid} status={current} />
          <EventLog pid={pid} sid={sid} version={eventsVersion} />
        </div>
        <aside class="side-col">
          <section class="card">
            <h3>Details</h3>
            <dl class="kv">
              <dt>Agent</dt><dd>{agent.data ? <Link href={`/p/${pid}/agents/${c.agent_id}`}>{agent.data.name}</Link> : <span class="mono">{short(c.agent_id)}</span>}</dd>
              <dt>Trigger</dt><dd>{c.trigger_type}</dd>
              <dt>Iterations</dt><dd>{c.iteration_count}</dd>
              <dt>Started</dt><dd>{when(c.created_at)}</dd>
              {c.error ? <><dt>Error</dt><dd class="error-inline">{c.error}</dd></> : null}
            </dl>
          </section>
          <ContainerCard conv={c} status={current} />
          <section class="card">
            <h3>Status timeline</h3>
            <ol class="timeline" data-testid="timeline">
              {timeline.map((s) => (
                <li key={s.index}><StatusBadge status={s.status} /> <span class="muted">{new Date(s.at).toLocaleTimeString()}</span>{s.reason ? <div class="muted small">{s.reason}</div> : null}</li>
              ))}
            </ol>
          </section>
        </aside>
      </div>
    </div>
  );
}

function BlockView({ b, status }: { b: Block; status: SessionStatus }) {
  if (b.kind === 'user') return <div class="msg user"><div class="who">you</div><div class="text">{b.text}</div></div>;
  if (b.kind === 'error') return <div class="msg error" role="alert"><div class="who">error</div><div class="text">{b.text}</div></div>;
  if (b.kind === 'text') {
    return (
      <div class="msg agent">
        <div class="who">agent{b.durable === undefined ? <span class="typing" aria-label="streaming"> ●</span> : null}</div>
        <div class="text" data-testid="agent-text" data-turn={b.turn} data-streamed={b.streamed} data-complete={b.durable !== undefined ? 'true' : 'false'}>
          {b.durable ?? b.streamed}
        </div>
      </div>
    );
  }
  return (
    <details class="tool" open data-testid="tool" data-tool={b.name}>
      <summary>
        <span class="mono">{b.name}</span>{' '}
        {b.result ? <span class={b.result.is_error ? 'badge status-failed' : 'badge status-completed'}>{b.result.is_error ? 'error' : 'done'}{b.result.exit_code !== undefined ? ` · exit ${b.result.exit_code}` : ''}</span> : status === 'running' ? <span class="badge status-running">running</span> : <span class={`badge status-${status}`}>{status === 'paused' ? 'paused' : 'not finished'}</span>}
      </summary>
      <div class="small muted">input</div>
      <pre class="mono">{JSON.stringify(b.input, null, 2)}</pre>
      <div class="small muted">output</div>
      <pre class="mono output" data-testid="tool-output">{b.output || (b.result ? contentText(b.result.content) : '')}</pre>
    </details>
  );
}

function Controls({ pid, conv, status, onChanged }: { pid: string; conv: Conversation; status: SessionStatus; onChanged(s: SessionStatus): void }) {
  const active = status === 'queued' || status === 'running' || status === 'idle';
  const terminal = isTerminal(status);
  return (
    <div class="controls" role="toolbar" aria-label="Session controls">
      <Action data-testid="pause" disabled={!active} busyText="Pausing" run={async () => onChanged((await api.control(pid, conv.id, 'pause')).status)}>Pause</Action>
      <Action data-testid="resume" disabled={status !== 'paused'} busyText="Resuming" run={async () => onChanged((await api.control(pid, conv.id, 'resume')).status)}>Resume</Action>
      <Action data-testid="interrupt" disabled={status !== 'running'} busyText="Interrupting" run={async () => { await api.interrupt(conv.id); }}>Interrupt</Action>
      <Action data-testid="stop" kind="danger" disabled={terminal} busyText="Stopping" run={async () => onChanged((await api.control(pid, conv.id, 'stop')).status)}>Stop</Action>
    </div>
  );
}

function ContainerCard({ conv, status }: { conv: Conversation; status: SessionStatus }) {
  const sb = useLoad<Sandbox | null>(async () => (conv.sandbox_id ? api.sandbox(conv.sandbox_id) : null), [conv.sandbox_id]);
  useEffect(() => {
    void sb.reload();
  }, [status, conv.container_id]);
  return (
    <section class="card">
      <h3>Container</h3>
      <dl class="kv">
        <dt>Container</dt><dd class="mono" data-testid="container-id">{conv.container_id ? conv.container_id.slice(0, 12) : '—'}</dd>
        <dt>State</dt><dd data-testid="container-state">{sb.data ? sb.data.state : sb.error ? '?' : '…'}</dd>
        <dt>Sandbox</dt><dd class="mono">{short(conv.sandbox_id)}</dd>
      </dl>
      <ErrorBox error={sb.error} />
    </section>
  );
}

function MessageBox({ pid, sid, status }: { pid: string; sid: string; status: SessionStatus }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (isTerminal(status)) return null;
  const send = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await api.sendMessage(pid, sid, text.trim());
      setText('');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card message-box" onSubmit={send} aria-label="Send a message">
      <textarea rows={2} value={text} placeholder="Message the agent (Ctrl+Enter to send)" aria-label="Message" data-testid="message-input"
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void send(e); }} />
      <button type="submit" class="primary" disabled={busy || !text.trim()} aria-busy={busy}>{busy ? 'Sending…' : 'Send'}</button>
      <ErrorBox error={error} />
    </form>
  );
}

const PAGE = 20;

function EventLog({ pid, sid, version }: { pid: string; sid: string; version: number }) {
  const [offset, setOffset] = useState(0);
  const page = useLoad(() => api.events(pid, sid, PAGE, offset), [pid, sid, offset]);
  useEffect(() => {
    if (version) void page.reload();
  }, [version]);
  const total = page.data?.total ?? 0;
  return (
    <section class="card">
      <div class="section-head">
        <h3>Event log</h3>
        <span class="muted">{page.data ? `${total === 0 ? 0 : offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : ''}</span>
      </div>
      <ErrorBox error={page.error} />
      {!page.data ? <Loading /> : page.data.events.length === 0 ? <p class="muted">No events yet.</p> : (
        <table class="table small" data-testid="event-log">
          <thead><tr><th>#</th><th>Type</th><th>Source</th><th>Payload</th><th>At</th></tr></thead>
          <tbody>
            {page.data.events.map((e) => (
              <tr key={e.id}><td>{e.event_index}</td><td>{e.event_type}</td><td>{e.event_source}</td><td class="mono clip" title={JSON.stringify(e.payload)}>{JSON.stringify(e.payload)}</td><td>{new Date(e.created_at).toLocaleTimeString()}</td></tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="pager">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>← Earlier</button>
        <button type="button" disabled={!page.data?.has_more} onClick={() => setOffset(offset + PAGE)}>Later →</button>
      </div>
    </section>
  );
}
