/**
 * The small interfaces through which services reach the world they do not own: the worker that
 * holds a sandbox (commands), the session queue (activations), the event pipeline (events) and
 * the dashboards.
 * Services call these and import no Redis, queue or Docker; the process entry (server.ts, the
 * worker) installs the implementations once at start-up (src/wiring.ts), and a test can
 * install its own.
 */
import type { DeliveredEvent } from './hub-events.js';
import type { SessionCommit } from './sessions.js';

/** Commands to the worker that owns a sandbox's container. Each resolves once the worker has done it. */
export interface SandboxCommands {
  /** Creates and starts the container (or finds it). Throws `unprocessable` when the engine refuses (e.g. no such image). */
  ensure(sandboxId: string): Promise<{ containerId: string }>;
  /**
   * Freezes the container if the sandbox is still meant to be paused. With `releaseOf`, first waits
   * (bounded) until that session's activation has stood down, so no exec starts in a frozen container.
   */
  pause(sandboxId: string, releaseOf?: { sessionId: string; activation: number }): Promise<void>;
  /** Thaws the container if the sandbox is still meant to be active, then kills the given tool runs. */
  resume(sandboxId: string, killRuns?: string[]): Promise<void>;
  /** Removes the container (no error when it is gone); `abortSession` is told to stand down first. */
  remove(sandboxId: string, abortSession?: string): Promise<void>;
  /** Runs a short command in the sandbox (read-only helpers such as the pair reviewer's listing). */
  exec(sandboxId: string, command: string, timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /**
   * Tells whoever drives the session to stand down; with `wait` (the session was running), waits
   * (bounded) until that activation has, so the caller may touch what it left behind.
   */
  release(sessionId: string, activation: number, reason: 'pause' | 'stop' | 'interrupt', wait: boolean): Promise<void>;
}

export interface ActivationQueue {
  /** Queues one activation of a session (idempotent per activation). */
  enqueue(sessionId: string, activation: number): Promise<void>;
}

/**
 * The event pipeline's entry (src/pipeline/): writers hand it what they committed; it publishes
 * it and runs the feature listeners after the writer's call has returned.
 */
export interface EventSink {
  sessionCommitted(commit: SessionCommit): Promise<void>;
  agentEvent(delivered: DeliveredEvent): Promise<void>;
}

/** Dashboard-only announcements that are not session events (e.g. agent:chat:reply). */
export interface Dashboards {
  emit(projectId: string, name: string, data: Record<string, unknown>): Promise<void>;
}

export interface Ports {
  commands: SandboxCommands;
  activations: ActivationQueue;
  events: EventSink;
  dashboards: Dashboards;
}

let installed: Ports | undefined;

export function installPorts(p: Ports): void {
  installed = p;
}

export function ports(): Ports {
  if (!installed) throw new Error('Service ports are not installed: the process entry must call installDefaultPorts() (src/wiring.ts) at start-up');
  return installed;
}
