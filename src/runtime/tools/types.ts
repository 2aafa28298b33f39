/**
 * What every tool family implements, so the registry (and the actor) need not know which tools
 * exist. A new family (git, pull requests, ...) is one module exporting a ToolFamily, added to the
 * list in activation-context.ts.
 */
import type { NewEvent, SessionRow } from '../../db/session-store.js';
import type { ToolCall, ToolDefinition } from '../providers/types.js';
import type { SandboxDriver } from '../sandbox/driver.js';

export type { ToolCall, ToolDefinition };

export interface ToolOutcome {
  /** What the model reads as the tool's result. */
  content: string;
  is_error: boolean;
  /** A process's exit code, for tools that run one. */
  exit_code?: number;
  /** Set by a tool that ends the session (finish): the session completes with this summary. */
  finish?: { summary: string };
  /** Durable events recorded with the result, in the same write (e.g. pr_created). */
  events?: NewEvent[];
  /** Session columns set in the same write (e.g. pr_url). */
  patch?: Record<string, unknown>;
}

/** What a running tool may use; built by the actor for each call. */
export interface ToolRunContext {
  session: SessionRow;
  driver: SandboxDriver;
  containerId: string;
  /** Aborted when the activation stands down, whatever the reason. */
  signal: AbortSignal;
  /**
   * Aborted when a process running in the sandbox must be killed: every stand-down except pause
   * (the container is about to be frozen, and an exec into it would wedge Docker; resume ends the
   * frozen run).
   */
  killSignal: AbortSignal;
  /** Upper bound for a command, in ms (the tool timeout, capped by what is left of the session). */
  maxTimeoutMs: number;
  /** Streams a process's output as it comes. */
  onOutput: (stream: 'stdout' | 'stderr', chunk: string) => void;
  /** Called once the tool's process runs in the container (the engine has done starting it). */
  onStart: () => void;
}

export interface ToolFamily {
  /** The tools this family offers the model. */
  readonly definitions: ToolDefinition[];
  /** True when this family runs tools of this name (whether or not it offers them). */
  has(name: string): boolean;
  /** Runs one call. Failures the model should see are outcomes with is_error, not exceptions. */
  run(call: ToolCall, ctx: ToolRunContext): Promise<ToolOutcome>;
  /** Releases what the family holds (connections, processes) at the end of the activation. */
  close?(): Promise<void>;
}
