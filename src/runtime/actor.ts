/**
 * The session actor: one activation of one session, run by a worker as a BullMQ job.
 *
 *   claim (fenced) → load the activation context (agent, container, provider, tools) → loop:
 *     pending tool calls? run them in the sandbox, record results
 *     model owes an answer? stream it, record the message and its tool calls
 *     otherwise → idle (unless a message arrived meanwhile)
 *
 * All state is in the durable event log, so an activation can start anywhere: a fresh session,
 * a resumed one, or one whose previous worker died mid-turn. Every write carries the claimed
 * activation; when a control action (pause, stop, interrupt) or another worker bumps it, the
 * write is refused and this activation stands down without touching anything.
 */
import crypto from 'node:crypto';
import { config } from '../config.js';
import { getSession, loadEvents, writeSession, type NewEvent, type SessionRow } from '../db/session-store.js';
import { activeSessions, modelCalls, sessionActivations, toolCalls, toolLabel } from '../lib/metrics.js';
import type { Logger } from '../log.js';
import { publishLive, type LiveMessage } from '../realtime/bus.js';
import { announceReleased } from './control.js';
import { loadActivationContext, type ActivationContext } from './activation-context.js';
import { cloneForSession, RepositoryStartError } from './repos/prepare.js';
import { interruptedResult, readState, splitInterrupted, type PendingTool, type SessionState } from './context.js';
import { buildSystemPrompt } from './prompt.js';
import { ModelProviderError, type ModelProvider, type ToolDefinition } from './providers/types.js';
import type { SandboxDriver } from './sandbox/driver.js';
import type { ToolOutcome, ToolRegistry } from './tools/index.js';
import { isTransient } from '../lib/transient.js';


export interface ActorDeps {
  driver: SandboxDriver;
  workerId: string;
  log: Logger;
  /** Live activations of this process, so control messages can abort them. */
  live: Map<string, AbortController>;
}

export type ActivationOutcome = 'idle' | 'completed' | 'failed' | 'stood-down' | 'not-claimed' | 'handed-back';

/** Thrown when a fenced write is refused: someone else now owns the session. */
class Fenced extends Error {}

/** What an activation holds that its end must let go of, whichever way it ends. */
interface Held {
  /**
   * Settles once Docker is done starting the current tool's process (see Turns.runTool); the
   * start itself is on the sandbox's lane (ctx.driver), which a pause round also takes.
   */
  dockerSettled: Promise<void>;
  /** The activation's tools (MCP connections), once loaded. */
  tools?: ToolRegistry;
}

export async function runActivation(sessionId: string, deps: ActorDeps): Promise<ActivationOutcome> {
  const claimed = await writeSession(sessionId, [], {
    from: ['queued', 'running'],
    to: 'running',
    bumpActivation: true,
    claimedBy: deps.workerId,
  });
  if (!claimed) return 'not-claimed';
  const activation = claimed.session.activation;
  const ac = new AbortController();
  deps.live.get(sessionId)?.abort('fence');
  deps.live.set(sessionId, ac);
  sessionActivations.inc();
  activeSessions.inc();
  const log = deps.log.child({ session: sessionId, activation });
  const held: Held = { dockerSettled: Promise.resolve() };
  try {
    const ctx = await loadActivationContext(claimed.session, deps.driver, log, ac.signal);
    held.tools = ctx.tools;
    if (claimed.session.repository_id && !claimed.session.branch_name) {
      // Before the first model call: the repository, on the session's own branch.
      const branch = await cloneForSession(claimed.session, ctx.agent, ctx.driver, ctx.containerId, ac.signal);
      if (ac.signal.aborted) throw new Fenced();
      const res = await writeSession(sessionId, [], { activation, from: ['running'], patch: { branch_name: branch } });
      if (!res) throw new Fenced();
      log.info({ branch }, 'repository cloned into the sandbox');
    }
    return await new Turns(claimed.session, activation, ac.signal, ctx, ctx.driver, held, log).run();
  } catch (err) {
    if (ac.signal.aborted) {
      if (ac.signal.reason === 'shutdown') return handBack(sessionId, activation, log);
      return 'stood-down';
    }
    if (err instanceof Fenced) return 'stood-down';
    // Postgres, Redis or Docker away for a moment: let BullMQ retry the job (it resumes from the log).
    if (isTransient(err)) throw err;
    // What the session shows is generic (an internal message can carry SQL, paths or settings);
    // the details go to the log only, under a short reference the operator can search for.
    const ref = crypto.randomBytes(4).toString('hex');
    const shown = err instanceof ModelProviderError || err instanceof RepositoryStartError;
    const message = shown ? err.message : `Internal error (ref ${ref}); the operator's log has the details`;
    if (shown) log.warn({ err }, 'session failed');
    else log.error({ err, ref }, `session failed with an internal error (ref ${ref})`);
    await writeSession(sessionId, [{ event_type: 'error', event_source: 'system', payload: { message } }], {
      activation, from: ['running'], to: 'failed', reason: message,
    });
    return 'failed';
  } finally {
    if (deps.live.get(sessionId) === ac) deps.live.delete(sessionId);
    await held.tools?.close();
    activeSessions.dec();
    // An exec still starting when the container freezes wedges Docker: wait for it (bounded).
    await Promise.race([held.dockerSettled, new Promise((r) => setTimeout(r, 2000))]);
    // Tells a waiting pause that this activation touches the container no more (command-handler.ts).
    await announceReleased(sessionId, activation).catch(() => {});
  }
}

/** Worker shutting down: give the session back to the queue so another worker carries on. */
async function handBack(sessionId: string, activation: number, log: Logger): Promise<ActivationOutcome> {
  const res = await writeSession(sessionId, [], { activation, from: ['running'], to: 'queued', bumpActivation: true, reason: 'worker shutting down' });
  if (res) {
    const { enqueueActivation } = await import('./queue.js');
    await enqueueActivation(sessionId, res.session.activation);
    log.info('handed session back to the queue');
  }
  return 'handed-back';
}

/** A live message as a step writes it; live() adds the order and the session's ids. */
type LiveBody = Without<LiveMessage, 'activation' | 'seq' | 'at' | 'session_id' | 'project_id'>;
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The loop of one activation: read the log, do the next thing it calls for, record it, repeat. */
class Turns {
  private seq = 0;
  /** Tool calls this activation recorded (the model's answer): those it runs without question. */
  private readonly ownToolUses = new Set<string>();
  /** Kills sandbox processes on every stand-down but pause (see ToolRunContext.killSignal). */
  private readonly killSignal: AbortSignal;

  constructor(
    private readonly session: SessionRow,
    private readonly activation: number,
    private readonly signal: AbortSignal,
    private readonly ctx: ActivationContext,
    private readonly driver: SandboxDriver,
    private readonly held: Held,
    private readonly log: Logger,
  ) {
    this.killSignal = killSignal(signal);
  }

  async run(): Promise<ActivationOutcome> {
    const { agent } = this.ctx;
    for (;;) {
      this.standDownIfAborted();
      if (Date.now() > this.ctx.deadline) return this.fail(`timeout_minutes (${agent.timeout_minutes}) exceeded`);
      const events = await loadEvents(this.session.id);
      const state = readState(events);

      if (state.pending.length) {
        const { interrupted, run } = splitInterrupted(state.pending, this.ownToolUses, agent.rerun_interrupted_tools === true);
        if (interrupted) {
          // Cut short by a crash or a pause: not silently run again (see splitInterrupted).
          await this.write([{ event_type: 'tool_result', event_source: 'environment', payload: interruptedResult(interrupted) }]);
          this.log.info({ tool: interrupted.name, tool_use_id: interrupted.id }, 'interrupted tool call recorded, not re-run');
        }
        // The rest never started: this activation runs them (and owns them from now on).
        for (const c of run) this.ownToolUses.add(c.id);
        if (await this.runTools(run)) return 'completed';
      } else if (!state.needsModel) {
        if (await this.goIdle(events.length)) return 'idle';
      } else {
        const { iteration_count } = (await getSession(this.session.id))!;
        if (iteration_count >= agent.max_iterations) return this.fail(`max_iterations (${agent.max_iterations}) reached`);
        await this.askModel(state, events.length);
      }
    }
  }

  /** Runs the pending calls in order, recording each result; true once a tool (finish) completed the session. */
  private async runTools(pending: PendingTool[]): Promise<boolean> {
    for (const call of pending) {
      const outcome = await this.runTool(call);
      const result: NewEvent = {
        event_type: 'tool_result', event_source: 'environment',
        payload: { tool_use_id: call.id, name: call.name, content: outcome.content, is_error: outcome.is_error, ...(outcome.exit_code !== undefined ? { exit_code: outcome.exit_code } : {}) },
      };
      const extra = { events: [result, ...(outcome.events ?? [])], patch: outcome.patch };
      if (outcome.finish) {
        const { summary } = outcome.finish;
        await this.write(extra.events, { to: 'completed', reason: summary ? `finished: ${summary}` : 'finished', patch: extra.patch });
        return true;
      }
      await this.write(extra.events, { patch: extra.patch });
    }
    return false;
  }

  private async runTool(call: PendingTool): Promise<ToolOutcome> {
    const t0 = Date.now();
    let started = () => {};
    const run = this.ctx.tools.run(call, {
      session: this.session,
      driver: this.driver,
      containerId: this.ctx.containerId,
      signal: this.signal,
      killSignal: this.killSignal,
      maxTimeoutMs: Math.max(1000, Math.min(config.toolTimeoutSeconds * 1000, this.ctx.deadline - Date.now())),
      onOutput: (stream, chunk) => void this.live({ type: 'tool_output_delta', tool_use_id: call.id, stream, chunk }),
      onStart: () => started(),
    });
    // Docker is "settled" for this tool once its process is running or the tool is over;
    // standing down waits for that (see runActivation's finally).
    this.held.dockerSettled = new Promise<void>((res) => {
      started = res;
      run.then(() => res(), () => res());
    });
    // Stand down the moment we are told to, even if Docker is slow to kill the process (a
    // frozen container cannot run the kill); whoever resumes the session cleans up the run.
    const outcome = await untilAborted(this.signal, run);
    toolCalls.observe({ tool: toolLabel(call.name) }, (Date.now() - t0) / 1000);
    this.standDownIfAborted();
    return outcome;
  }

  /** Idle only if nothing arrived since we read the log (`seen` events); false: go round again. */
  private async goIdle(seen: number): Promise<boolean> {
    const res = await writeSession(this.session.id, [], { activation: this.activation, from: ['running'], to: 'idle', expectNextIndex: seen });
    if (res) return true;
    const now = await getSession(this.session.id);
    if (!now || now.activation !== this.activation || now.status !== 'running') throw new Fenced();
    return false;
  }

  /** One model call over the history (`seen` events of it), its text streamed; records the answer and its tool calls. */
  private async askModel(state: SessionState, seen: number): Promise<void> {
    const { agent, provider, skills, typePrompt } = this.ctx;
    const turn = state.assistantTurns;
    const answer = await callModel(provider, {
      system: buildSystemPrompt({ agentPrompt: agent.system_prompt, typePrompt, skills, userTexts: state.userTexts }),
      messages: state.messages,
      tools: this.ctx.tools.definitions,
      signal: this.signal,
      turnIndex: turn,
      onTextDelta: (delta) => void this.live({ type: 'text_delta', turn, delta }),
    }, agent.llm_provider);
    this.standDownIfAborted();
    for (const c of answer.toolCalls) {
      this.ownToolUses.add(c.id);
      await this.live({ type: 'tool_use_start', tool_use_id: c.id, name: c.name, input: c.input });
    }
    await this.write(
      [
        // context_index: the last event this call saw; anything later still needs an answer.
        { event_type: 'message', event_source: 'agent', payload: { role: 'assistant', message: answer.text, turn, context_index: seen - 1 } },
        ...answer.toolCalls.map((c) => ({ event_type: 'tool_use' as const, event_source: 'agent' as const, payload: { id: c.id, name: c.name, input: c.input } })),
      ],
      { countIteration: true },
    );
    this.log.debug({ turn, tools: answer.toolCalls.length }, 'model turn recorded');
  }

  private async fail(reason: string): Promise<ActivationOutcome> {
    await this.write([{ event_type: 'error', event_source: 'system', payload: { message: reason } }], { to: 'failed', reason });
    return 'failed';
  }

  /** A fenced write: refused once someone else owns the session, and then we stand down. */
  private async write(events: NewEvent[], opts: Parameters<typeof writeSession>[2] = {}) {
    const res = await writeSession(this.session.id, events, { ...opts, activation: this.activation, from: ['running'] });
    if (!res) throw new Fenced();
    return res;
  }

  /** Live deltas, ordered by (activation, seq); best effort (the durable events follow). */
  private live(body: LiveBody): Promise<void> {
    const msg = { activation: this.activation, seq: ++this.seq, ...body, session_id: this.session.id, project_id: this.session.project_id } as LiveMessage;
    return publishLive(msg).catch(() => {});
  }

  private standDownIfAborted() {
    if (this.signal.aborted) throw new Fenced();
  }
}

/**
 * The signal that kills a running tool process. Not on pause: the container is about to be frozen
 * and an exec into a frozen container blocks Docker's lock on it; resume ends the frozen run.
 */
function killSignal(signal: AbortSignal): AbortSignal {
  const ac = new AbortController();
  signal.addEventListener('abort', () => {
    if (signal.reason !== 'pause') ac.abort(signal.reason);
  }, { once: true });
  return ac.signal;
}

function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(new Fenced());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Fenced());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function callModel(provider: ModelProvider, req: Parameters<ModelProvider['call']>[0], name: string) {
  const started = Date.now();
  try {
    const r = await provider.call(req);
    modelCalls.observe({ provider: name, outcome: 'ok' }, (Date.now() - started) / 1000);
    return r;
  } catch (err) {
    modelCalls.observe({ provider: name, outcome: 'error' }, (Date.now() - started) / 1000);
    throw err;
  }
}

export type { ToolDefinition };
