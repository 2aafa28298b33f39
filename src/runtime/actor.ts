/**
 * The session actor: one activation of one session, run by a worker as a BullMQ job.
 *
 *   claim (fenced) → ensure the container → loop:
 *     pending tool calls? run them in the sandbox, record results
 *     model owes an answer? stream it, record the message and its tool calls
 *     otherwise → idle (unless a message arrived meanwhile)
 *
 * All state is in the durable event log, so an activation can start anywhere: a fresh session,
 * a resumed one, or one whose previous worker died mid-turn. Every write carries the claimed
 * activation; when a control action (pause, stop, interrupt) or another worker bumps it, the
 * write is refused and this activation stands down without touching anything.
 */
import { config } from '../config.js';
import { db } from '../db/knex.js';
import { getSession, loadEvents, writeSession, type NewEvent, type SessionRow } from '../db/session-store.js';
import { unseal } from '../lib/secrets.js';
import { activeSessions, modelCalls, sessionActivations, toolCalls, toolLabel } from '../lib/metrics.js';
import type { Logger } from '../log.js';
import { publishLive } from '../realtime/bus.js';
import { announceReleased } from './control.js';
import { ensureContainer } from './sandbox/containers.js';
import { readState } from './context.js';
import { createProvider } from './providers/index.js';
import { ModelProviderError, type ModelProvider, type ToolDefinition } from './providers/types.js';
import type { SandboxDriver } from './sandbox/driver.js';
import { BUILTIN_TOOLS, runTool } from './tools.js';
import { runTaskTool, TASK_TOOLS } from '../services/tasks.js';
import { McpToolbox } from './mcp.js';
import { isTransient } from '../lib/transient.js';
import { dockerClient } from './sandbox/index.js';

const TASK_TOOL_NAMES = new Set(TASK_TOOLS.map((t) => t.name));


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

export async function runActivation(sessionId: string, deps: ActorDeps): Promise<ActivationOutcome> {
  const claimed = await writeSession(sessionId, [], {
    from: ['queued', 'running'],
    to: 'running',
    bumpActivation: true,
    patch: { worker_id: deps.workerId, started_at: db.raw('coalesce(started_at, now())') },
  });
  if (!claimed) return 'not-claimed';
  const activation = claimed.session.activation;
  const ac = new AbortController();
  deps.live.get(sessionId)?.abort('fence');
  deps.live.set(sessionId, ac);
  sessionActivations.inc();
  activeSessions.inc();
  const log = deps.log.child({ session: sessionId, activation });
  const dockerSettled = { current: Promise.resolve() };
  const mcpBox: { current?: McpToolbox } = {};
  try {
    return await drive(claimed.session, activation, ac.signal, deps, log, dockerSettled, mcpBox);
  } catch (err) {
    if (ac.signal.aborted) {
      if (ac.signal.reason === 'shutdown') return handBack(sessionId, activation, log);
      return 'stood-down';
    }
    if (err instanceof Fenced) return 'stood-down';
    // Postgres, Redis or Docker away for a moment: let BullMQ retry the job (it resumes from the log).
    if (isTransient(err)) throw err;
    const message = err instanceof ModelProviderError ? err.message : `Internal error: ${(err as Error).message}`;
    log.warn({ err }, 'session failed');
    await writeSession(sessionId, [{ event_type: 'error', event_source: 'system', payload: { message } }], {
      activation, from: ['running'], to: 'failed', reason: message,
    });
    return 'failed';
  } finally {
    if (deps.live.get(sessionId) === ac) deps.live.delete(sessionId);
    await mcpBox.current?.close();
    activeSessions.dec();
    // An exec still starting when the container freezes wedges Docker: wait for it (bounded).
    await Promise.race([dockerSettled.current, new Promise((r) => setTimeout(r, 2000))]);
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

async function drive(
  session: SessionRow, activation: number, signal: AbortSignal, deps: ActorDeps, log: Logger,
  dockerSettled: { current: Promise<void> }, mcpBox: { current?: McpToolbox },
): Promise<ActivationOutcome> {
  const agent = await db('agents').where({ id: session.agent_id }).first();
  const type = agent.agent_type_id ? await db('agent_types').where({ id: agent.agent_type_id }).first() : null;
  const sandbox = await db('sandboxes').where({ id: session.sandbox_id }).first();
  const containerId = await ensureContainer(deps.driver, sandbox, session.id, { wake: true });
  const provider = createProvider({
    provider: agent.llm_provider,
    model: agent.llm_model,
    baseUrl: agent.llm_base_url,
    apiKey: agent.llm_api_key_sealed ? unseal(agent.llm_api_key_sealed) : null,
    script: agent.script,
  });
  const allowed: string[] | null = Array.isArray(type?.tools) && type.tools.length ? type.tools : null;
  const mcp = await McpToolbox.open(agent.id, containerId, dockerClient(), log);
  mcpBox.current = mcp;
  const tools = [
    ...BUILTIN_TOOLS.filter((t) => !allowed || allowed.includes(t.name)),
    // A session working a task gets tools to talk to the requester and report status.
    ...(session.trigger_type === 'task_assigned' ? TASK_TOOLS : []),
    ...mcp.tools(),
  ];
  const skills = await db('agent_skills').where({ agent_id: agent.id, is_enabled: true });
  const deadline = new Date(session.started_at ?? Date.now()).getTime() + agent.timeout_minutes * 60_000;
  let seq = 0;
  const order = () => ({ activation, seq: ++seq });

  const write = async (events: NewEvent[], opts: Parameters<typeof writeSession>[2] = {}) => {
    const res = await writeSession(session.id, events, { ...opts, activation, from: ['running'] });
    if (!res) throw new Fenced();
    return res;
  };
  const fail = async (reason: string): Promise<ActivationOutcome> => {
    await write([{ event_type: 'error', event_source: 'system', payload: { message: reason } }], { to: 'failed', reason });
    return 'failed';
  };

  for (;;) {
    if (signal.aborted) throw new Fenced();
    if (Date.now() > deadline) return fail(`timeout_minutes (${agent.timeout_minutes}) exceeded`);
    const events = await loadEvents(session.id);
    const state = readState(events);

    if (state.pending.length) {
      for (const call of state.pending) {
        const t0 = Date.now();
        // Stand down the moment we are told to, even if Docker is slow to kill the process (a
        // frozen container cannot run the kill); whoever resumes the session cleans up the run.
        let started = () => {};
        const toolRun = TASK_TOOL_NAMES.has(call.name) ? runTaskTool(session, call.id, call.name, call.input)
          : mcp.has(call.name) ? mcp.call(call.name, call.input, signal)
          : runTool(call.name, call.input, {
          driver: deps.driver, containerId, signal: killSignal(signal), runId: call.id, onStart: () => started(),
          maxTimeoutMs: Math.max(1000, Math.min(config.toolTimeoutSeconds * 1000, deadline - Date.now())),
          onOutput: (stream, chunk) => void publishLive({
            ...order(), type: 'tool_output_delta', session_id: session.id, project_id: session.project_id, tool_use_id: call.id, stream, chunk,
          }).catch(() => {}),
        });
        // Docker is "settled" for this tool once its process is running or the tool is over;
        // standing down waits for that (see runActivation's finally).
        dockerSettled.current = new Promise<void>((res) => {
          started = res;
          toolRun.then(() => res(), () => res());
        });
        const outcome = await untilAborted(signal, toolRun);
        toolCalls.observe({ tool: toolLabel(call.name) }, (Date.now() - t0) / 1000);
        if (signal.aborted) throw new Fenced();
        const result: NewEvent = {
          event_type: 'tool_result', event_source: 'environment',
          payload: { tool_use_id: call.id, name: call.name, content: outcome.content, is_error: outcome.is_error, ...(outcome.exit_code !== undefined ? { exit_code: outcome.exit_code } : {}) },
        };
        if (call.name === 'finish') {
          const summary = String(call.input.summary ?? '');
          await write([{ ...result, payload: { ...result.payload, content: summary || 'finished' } }], { to: 'completed', reason: summary ? `finished: ${summary}` : 'finished' });
          return 'completed';
        }
        await write([result]);
      }
      continue;
    }

    if (!state.needsModel) {
      // Idle only if nothing arrived since we read the log; otherwise go round again.
      const res = await writeSession(session.id, [], { activation, from: ['running'], to: 'idle', expectNextIndex: events.length });
      if (res) return 'idle';
      const now = await getSession(session.id);
      if (!now || now.activation !== activation || now.status !== 'running') throw new Fenced();
      continue;
    }

    const current = (await getSession(session.id))!;
    if (current.iteration_count >= agent.max_iterations) return fail(`max_iterations (${agent.max_iterations}) reached`);

    const turn = state.assistantTurns;
    const answer = await callModel(provider, {
      system: systemPrompt(agent, type, skills, state.userTexts),
      messages: state.messages,
      tools,
      signal,
      turnIndex: turn,
      onTextDelta: (delta) => void publishLive({ ...order(), type: 'text_delta', session_id: session.id, project_id: session.project_id, turn, delta }).catch(() => {}),
    }, agent.llm_provider);
    if (signal.aborted) throw new Fenced();
    for (const c of answer.toolCalls) {
      await publishLive({ ...order(), type: 'tool_use_start', session_id: session.id, project_id: session.project_id, tool_use_id: c.id, name: c.name, input: c.input }).catch(() => {});
    }
    await write(
      [
        // context_index: the last event this call saw; anything later still needs an answer.
        { event_type: 'message', event_source: 'agent', payload: { role: 'assistant', message: answer.text, turn, context_index: events.length - 1 } },
        ...answer.toolCalls.map((c) => ({ event_type: 'tool_use' as const, event_source: 'agent' as const, payload: { id: c.id, name: c.name, input: c.input } })),
      ],
      { patch: { iteration_count: db.raw('iteration_count + 1') } },
    );
    log.debug({ turn, tools: answer.toolCalls.length }, 'model turn recorded');
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

function systemPrompt(agent: Record<string, any>, type: Record<string, any> | null, skills: Array<Record<string, any>>, userTexts: string[]): string {
  const base = agent.system_prompt || type?.default_system_prompt ||
    'You are an agent working in a sandboxed Linux container. Use the tools to do the task; call finish with a summary when done.';
  const said = userTexts.join('\n').toLowerCase();
  // A skill joins the context once any of its triggers has appeared in a user message.
  const triggered = skills.filter((s) => (s.triggers as string[]).some((t) => t && new RegExp(`\\b${escapeRe(t.toLowerCase())}\\b`).test(said)));
  const parts = [base, 'Your working directory is /workspace inside the sandbox.'];
  for (const s of triggered) parts.push(`## Skill: ${s.skill_name}\n\n${s.skill_content}`);
  return parts.join('\n\n');
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export type { ToolDefinition };
