/**
 * A steady load of scripted sessions (a few bash calls with small sleeps each), kept at a number
 * in flight, and the per-session verdict read from the durable event log:
 *  - stuck: not at rest (idle / completed / failed / stopped) by the deadline;
 *  - lost: a gap in event_index, or (for a session that ended normally) a scripted turn, tool call
 *    or tool result that never made it into the log;
 *  - duplicated: more than one agent message for a scripted turn, more than one tool_use or
 *    tool_result for one tool call id, more than one user message, or a session created twice.
 */
import { call, newAgent, postOnce, q, type Res } from './client.js';
import { sleep } from './cluster.js';
import type { FaultResult } from './report.js';
import { sseClient, sseVerdict, type SseClient } from './streams.js';

export type Ending = 'finish' | 'idle';

const TOOL_STEPS = [
  'echo one >> /workspace/log; sleep 0.3; echo ok',
  'sleep 0.2; cat /workspace/log',
  'echo three; sleep 0.3; echo done',
];

export function loadScript(ending: Ending, tokenDelayMs = 15, steps = TOOL_STEPS) {
  return {
    token_delay_ms: tokenDelayMs,
    turns: [
      ...steps.map((command, i) => ({ text: `Step ${i + 1} of ${steps.length}: running a command now.`, tool_calls: [{ name: 'bash', input: { command } }] })),
      ending === 'finish'
        ? { text: 'All steps are done.', tool_calls: [{ name: 'finish', input: { summary: `${steps.length} steps` } }] }
        : { text: 'All steps are done; waiting for you.' },
    ],
  };
}

export interface Expectation {
  ending: Ending;
  /** Scripted model turns (agent messages) a normal end has. */
  turns: number;
  toolUseIds: string[];
}

export function expectationOf(script: ReturnType<typeof loadScript>, ending: Ending): Expectation {
  const toolUseIds = script.turns.flatMap((t, turn) => ((t as { tool_calls?: unknown[] }).tool_calls ?? []).map((_, i) => `toolu_scripted_${turn}_${i}`));
  return { ending, turns: script.turns.length, toolUseIds };
}

export interface Tracked {
  id: string;
  agentId: string;
  expect: Expectation;
  createdAt: number;
  restedAt?: number;
  status?: string;
  error?: string | null;
}

export const REST = ['idle', 'completed', 'failed', 'stopped'];

export interface LoadAgent {
  id: string;
  expect: Expectation;
}

/** Creates the agents a load uses in a project: three finish with `finish`, one ends idle. */
export async function loadAgents(base: string, token: string, projectId: string, tokenDelayMs = 15): Promise<LoadAgent[]> {
  const out: LoadAgent[] = [];
  for (const ending of ['finish', 'finish', 'finish', 'idle'] as Ending[]) {
    const script = loadScript(ending, tokenDelayMs);
    const a = await newAgent(base, token, projectId, { script, max_iterations: 20 });
    out.push({ id: a.id, expect: expectationOf(script, ending) });
  }
  return out;
}

export class Load {
  readonly tracked = new Map<string, Tracked>();
  readonly createFailures: string[] = [];
  createRetries = 0;
  /** One SSE client per session, opened as soon as it is created (with `sse`). */
  readonly streams: SseClient[] = [];
  private creating = 0;
  private running = false;
  private loop?: Promise<void>;
  private n = 0;

  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly projectId: string,
    private readonly agents: LoadAgent[],
    public inFlight = 8,
    private readonly opts: { sse?: boolean } = {},
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops creating sessions; those in flight carry on. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    while (this.creating > 0) await sleep(100);
  }

  active(): Tracked[] {
    return [...this.tracked.values()].filter((t) => !t.restedAt);
  }

  private async run() {
    while (this.running) {
      while (this.running && this.active().length + this.creating < this.inFlight) void this.create();
      await this.poll().catch(() => {});
      await sleep(250);
    }
  }

  private async create() {
    this.creating++;
    const agent = this.agents[this.n++ % this.agents.length];
    try {
      const r = await postOnce(this.base, '/api/v1/sessions', this.token, { agent_id: agent.id, project_id: this.projectId, message: 'Run your steps.' });
      this.createRetries += r.attempts - 1;
      if (r.res?.status === 201) {
        const id = r.res.body.id as string;
        this.tracked.set(id, { id, agentId: agent.id, expect: agent.expect, createdAt: Date.now() });
        if (this.opts.sse) this.streams.push(sseClient(this.base, id, this.token));
      } else {
        this.createFailures.push(r.res ? `${r.res.status} ${r.res.text.slice(0, 200)}` : `no answer: ${r.errors.at(-1)}`);
        await sleep(1000);
      }
    } finally {
      this.creating--;
    }
  }

  /** Reads the status of sessions not yet at rest. */
  async poll(): Promise<void> {
    const ids = this.active().map((t) => t.id);
    if (!ids.length) return;
    const rows = await q((k) => k('sessions').whereIn('id', ids).select('id', 'status', 'error'), 0);
    for (const r of rows) {
      const t = this.tracked.get(r.id)!;
      if (REST.includes(r.status)) Object.assign(t, { restedAt: Date.now(), status: r.status, error: r.error });
    }
  }

  /**
   * Once the sessions are at rest: gives the SSE clients a grace period to receive the rest of
   * their logs, closes them, and compares what they got with the logs.
   */
  async streamVerdict(graceMs = 10_000) {
    const logs = new Map<string, number>();
    const rows = await q((k) => k('sessions').whereIn('id', this.streams.map((s) => s.sessionId)).select('id', 'next_event_index'));
    for (const r of rows) logs.set(r.id, r.next_event_index);
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && !this.streams.every((s) => new Set(s.ids).size >= (logs.get(s.sessionId) ?? 0))) await sleep(200);
    await sleep(300); // anything more would be a repeat
    for (const s of this.streams) s.close();
    return { clients: this.streams.length, reconnects: this.streams.reduce((n, s) => n + Math.max(0, s.opens - 1), 0), ...sseVerdict(this.streams, logs) };
  }

  closeStreams(): void {
    for (const s of this.streams) s.close();
  }

  /** Waits until every session is at rest, or the deadline; returns the ones still not. */
  async drain(timeoutMs: number): Promise<Tracked[]> {
    await this.stop();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await this.poll().catch(() => {});
      if (!this.active().length) return [];
      await sleep(300);
    }
    await this.poll().catch(() => {});
    return this.active();
  }
}

/** Waits for given sessions (tracked elsewhere) to be at rest. */
export async function waitRest(sessions: Tracked[], timeoutMs: number): Promise<Tracked[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = sessions.filter((t) => !t.restedAt);
    if (!open.length) return [];
    const rows = await q((k) => k('sessions').whereIn('id', open.map((t) => t.id)).select('id', 'status', 'error'), 0).catch(() => []);
    for (const r of rows) {
      const t = open.find((x) => x.id === r.id)!;
      if (REST.includes(r.status)) Object.assign(t, { restedAt: Date.now(), status: r.status, error: r.error });
    }
    if (Date.now() > deadline) return sessions.filter((t) => !t.restedAt);
    await sleep(300);
  }
}

export interface SessionVerdict {
  id: string;
  status: string;
  stuck: boolean;
  failed: boolean;
  error?: string | null;
  lost: number;
  duplicated: number;
  notes: string[];
}

export async function verifySession(t: Tracked): Promise<SessionVerdict> {
  const row = await q((k) => k('sessions').where({ id: t.id }).first('status', 'error', 'next_event_index'));
  const events = await q((k) => k('session_events').where({ session_id: t.id }).orderBy('event_index').select('event_index', 'event_type', 'event_source', 'payload'));
  const v: SessionVerdict = { id: t.id, status: row.status, stuck: !REST.includes(row.status), failed: row.status === 'failed', error: row.error, lost: 0, duplicated: 0, notes: [] };

  // Dense 0..n-1, and the row's counter agrees.
  const n = Math.max(row.next_event_index, events.length ? events.at(-1)!.event_index + 1 : 0);
  const have = new Set(events.map((e) => e.event_index));
  const gaps = [];
  for (let i = 0; i < n; i++) if (!have.has(i)) gaps.push(i);
  if (gaps.length) {
    v.lost += gaps.length;
    v.notes.push(`event_index gaps: ${gaps.slice(0, 10).join(',')}`);
  }

  const count = <K>(keys: K[]) => keys.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<K, number>());
  const turns = count(events.filter((e) => e.event_type === 'message' && e.event_source === 'agent').map((e) => Number(e.payload.turn)));
  const uses = count(events.filter((e) => e.event_type === 'tool_use').map((e) => String(e.payload.id)));
  const results = count(events.filter((e) => e.event_type === 'tool_result').map((e) => String(e.payload.tool_use_id)));
  const users = events.filter((e) => e.event_type === 'message' && e.event_source === 'user').length;
  const extra = (m: Map<unknown, number>, what: string) => {
    for (const [k, c] of m) if (c > 1) {
      v.duplicated += c - 1;
      v.notes.push(`${what} ${k} x${c}`);
    }
  };
  extra(turns, 'agent message of turn');
  extra(uses, 'tool_use');
  extra(results, 'tool_result for');
  if (users > 1) {
    v.duplicated += users - 1;
    v.notes.push(`user message x${users}`);
  }

  // A normal end (idle or completed) must have everything the script says. Without its user
  // message (the create was acknowledged) nothing could run: that one event is what was lost.
  const expected = t.expect.ending === 'finish' ? 'completed' : 'idle';
  const normal = row.status === 'idle' || row.status === 'completed';
  if (normal && row.status !== expected) v.notes.push(`ended ${row.status}, expected ${expected}`);
  if (normal && users === 0) {
    v.lost++;
    v.notes.push('the user message of an acknowledged create is missing (so nothing ran)');
  } else if (normal) {
    const missing: string[] = [];
    for (let turn = 0; turn < t.expect.turns; turn++) if (!turns.has(turn)) missing.push(`agent message of turn ${turn}`);
    for (const id of t.expect.toolUseIds) {
      if (!uses.has(id)) missing.push(`tool_use ${id}`);
      if (!results.has(id)) missing.push(`tool_result for ${id}`);
    }
    v.lost += missing.length;
    if (missing.length) v.notes.push(`missing: ${missing.join(', ')}`);
  }
  return v;
}

export interface Tally {
  /** Failed sessions whose error says nothing. */
  unclear: number;
  sessions: number;
  lost: number;
  duplicated: number;
  stuck: number;
  failed: number;
  failures: string[];
  problems: string[];
}

export async function verifyAll(sessions: Tracked[], projectId: string): Promise<Tally & { verdicts: SessionVerdict[] }> {
  const verdicts: SessionVerdict[] = [];
  for (const t of sessions) verdicts.push(await verifySession(t));
  const tally: Tally & { verdicts: SessionVerdict[] } = { unclear: 0, sessions: sessions.length, lost: 0, duplicated: 0, stuck: 0, failed: 0, failures: [], problems: [], verdicts };
  for (const v of verdicts) {
    tally.lost += v.lost;
    tally.duplicated += v.duplicated;
    if (v.stuck) tally.stuck++;
    if (v.failed) {
      tally.failed++;
      tally.failures.push(`${v.id.slice(0, 8)}: ${v.error}`);
      if (!v.error?.trim()) {
        tally.unclear++;
        tally.problems.push(`${v.id.slice(0, 8)} failed without a reason`);
      }
    }
    if (v.stuck) v.notes.unshift('not at rest by the deadline');
    if (v.notes.length || v.stuck) tally.problems.push(`${v.id.slice(0, 8)} [${v.status}] ${v.notes.join('; ')}`);
  }
  // A session nobody asked for (a create that happened twice) is a duplicate too.
  const known = new Set(sessions.map((s) => s.id));
  const all = await q((k) => k('sessions').where({ project_id: projectId }).select('id'));
  const strays = all.filter((r) => !known.has(r.id));
  if (strays.length) {
    tally.duplicated += strays.length;
    tally.problems.push(`${strays.length} session(s) created that no request asked for: ${strays.map((s) => s.id.slice(0, 8)).join(',')}`);
  }
  return tally;
}

/** Adds what the SSE clients saw to a fault's result. */
export function applyStreams(r: FaultResult, v: Awaited<ReturnType<Load['streamVerdict']>>): void {
  r.lost += v.lost;
  r.duplicated += v.duplicated;
  r.problems.push(...v.problems);
  r.details.sse = { clients: v.clients, reconnects: v.reconnects, lost: v.lost, duplicated: v.duplicated };
}

/** Adds a verification tally to a fault's result. */
export function applyTally(r: FaultResult, t: Tally): void {
  r.sessions += t.sessions;
  r.lost += t.lost;
  r.duplicated += t.duplicated;
  r.stuck += t.stuck;
  r.failed += t.failed;
  r.failures.push(...t.failures);
  r.problems.push(...t.problems);
  if (t.unclear) r.ok = false;
}

/** Stops the sessions that ended idle, so their containers go away. */
export async function stopIdle(base: string, token: string, projectId: string, sessions: Array<{ id: string }>): Promise<void> {
  const idle = await q((k) => k('sessions').whereIn('id', sessions.map((s) => s.id)).whereIn('status', ['idle', 'paused', 'queued', 'running']).select('id'));
  await Promise.all(idle.map((s) => call(base, 'POST', `/api/v1/projects/${projectId}/conversations/${s.id}/stop`, { token, body: {} }).catch((): Res | null => null)));
}
