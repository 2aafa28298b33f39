/**
 * What the api may ask of the worker that owns a sandbox, as data. Commands travel as BullMQ jobs
 * on one queue per worker host (each host owns one Docker engine; the sandbox row says which
 * host); the job's completion is the acknowledgement, its return value the answer, its failure
 * the refusal.
 */
export const COMMAND_QUEUE = 'sandbox-commands';

/** The command queue of one host (BullMQ queue names must not contain ':'; host ids cannot). */
export const commandQueueName = (hostId: string) => `${COMMAND_QUEUE}.${hostId}`;

export type Command =
  | { type: 'sandbox.ensure'; sandboxId: string }
  | { type: 'sandbox.pause'; sandboxId: string; releaseOf?: { sessionId: string; activation: number } }
  | { type: 'sandbox.resume'; sandboxId: string; killRuns?: string[] }
  | { type: 'sandbox.remove'; sandboxId: string; abortSession?: string }
  | { type: 'sandbox.exec'; sandboxId: string; command: string; timeoutMs: number }
  | { type: 'session.release'; sessionId: string; activation: number; reason: 'pause' | 'stop' | 'interrupt'; wait: boolean };

export type CommandType = Command['type'];

export interface CommandAnswers {
  'sandbox.ensure': { containerId: string };
  'sandbox.pause': { paused: boolean };
  'sandbox.resume': { resumed: boolean };
  'sandbox.remove': { removed: boolean };
  'sandbox.exec': { exitCode: number; output: string };
  'session.release': { released: boolean };
}

/** A refusal the api should pass on as a 422 (the engine said no), not as an outage. */
export const REFUSED_PREFIX = 'refused: ';

/** How long the api waits for a worker, per command, before answering 503. */
export const COMMAND_TIMEOUT_MS: Record<CommandType, number> = {
  'sandbox.ensure': 120_000, // may pull nothing, but a cold create on a busy engine takes seconds
  'sandbox.pause': 15_000,
  'sandbox.resume': 15_000,
  'sandbox.remove': 30_000,
  'sandbox.exec': 15_000,
  'session.release': 10_000,
};
