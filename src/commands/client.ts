/**
 * The api's side of the command channel: puts a command on the workers' queue and waits for the
 * job to finish, which is the worker's acknowledgement. A refusal from the engine comes back as
 * `unprocessable`; no answer in time as `unavailable` (503), with the intent already recorded in
 * Postgres, so the worker that eventually takes the command (or the reaper) converges on it.
 */
import { Queue, QueueEvents } from 'bullmq';
import { config } from '../config.js';
import { unavailable, unprocessable } from '../domain/errors.js';
import { createRedis } from '../lib/redis.js';
import type { SandboxCommands } from '../domain/ports.js';
import { COMMAND_QUEUE, COMMAND_TIMEOUT_MS, REFUSED_PREFIX, type Command, type CommandAnswers, type CommandType } from './protocol.js';

let queue: Queue | undefined;
let events: QueueEvents | undefined;

function channel(): { queue: Queue; events: QueueEvents } {
  const prefix = `${config.redisPrefix}:bull`;
  queue ??= new Queue(COMMAND_QUEUE, {
    connection: createRedis({ forBullmq: true, name: 'troupe-commands' }),
    prefix,
    defaultJobOptions: { attempts: 1, removeOnComplete: { age: 300, count: 1000 }, removeOnFail: { age: 3600, count: 1000 } },
  });
  events ??= new QueueEvents(COMMAND_QUEUE, { connection: createRedis({ forBullmq: true, name: 'troupe-command-acks' }), prefix });
  return { queue, events };
}

/** Sends one command and resolves with the worker's answer. */
export async function send<T extends CommandType>(command: Extract<Command, { type: T }>, ownTimeoutMs = COMMAND_TIMEOUT_MS[command.type]): Promise<CommandAnswers[T]> {
  const timeoutMs = Math.min(ownTimeoutMs, config.commandTimeoutMs ?? Infinity);
  const { queue: q, events: ev } = channel();
  await ev.waitUntilReady();
  const job = await q.add(command.type, command);
  try {
    return (await job.waitUntilFinished(ev, timeoutMs)) as CommandAnswers[T];
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (message.startsWith(REFUSED_PREFIX)) throw unprocessable(message.slice(REFUSED_PREFIX.length));
    if (/timed out|ttl/i.test(message)) {
      throw unavailable(
        `No worker confirmed "${command.type}" within ${Math.round(timeoutMs / 1000)}s. What was asked is recorded and a worker will carry it out when one is running; check that workers are up (GET /readyz shows them) and retry.`,
        5,
      );
    }
    throw new Error(`worker failed "${command.type}": ${message}`, { cause: err });
  }
}

/** The SandboxCommands port over this channel. */
export const queuedSandboxCommands: SandboxCommands = {
  ensure: (sandboxId) => send({ type: 'sandbox.ensure', sandboxId }),
  pause: async (sandboxId, releaseOf) => void (await send({ type: 'sandbox.pause', sandboxId, releaseOf })),
  resume: async (sandboxId, killRuns) => void (await send({ type: 'sandbox.resume', sandboxId, killRuns })),
  remove: async (sandboxId, abortSession) => void (await send({ type: 'sandbox.remove', sandboxId, abortSession })),
  exec: (sandboxId, command, timeoutMs) => send({ type: 'sandbox.exec', sandboxId, command, timeoutMs }, timeoutMs + 5000),
  release: async (sessionId, activation, reason, wait) => void (await send({ type: 'session.release', sessionId, activation, reason, wait })),
};

export async function closeCommandClient(): Promise<void> {
  await Promise.all([queue?.close(), events?.close()]);
  queue = undefined;
  events = undefined;
}
