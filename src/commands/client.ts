/**
 * The api's side of the command channel: puts a command on the queue of the worker host that
 * holds the sandbox (placing the sandbox first if it has no host yet) and waits for the job to
 * finish, which is that host's acknowledgement. A refusal from the engine comes back as
 * `unprocessable`; no answer in time as `unavailable` (503), with the intent already recorded in
 * Postgres, so the host that eventually takes the command (or the reaper) converges on it.
 */
import { Queue, QueueEvents } from 'bullmq';
import { config } from '../config.js';
import { unavailable, unprocessable } from '../domain/errors.js';
import { createRedis } from '../lib/redis.js';
import type { SandboxCommands } from '../domain/ports.js';
import { COMMAND_TIMEOUT_MS, REFUSED_PREFIX, commandQueueName, type Command, type CommandAnswers, type CommandType } from './protocol.js';
import { hostForSandbox, hostForSession, noHostMessage } from './routing.js';

const channels = new Map<string, { queue: Queue; events: QueueEvents }>();

function channel(hostId: string): { queue: Queue; events: QueueEvents } {
  let ch = channels.get(hostId);
  if (!ch) {
    const prefix = `${config.redisPrefix}:bull`;
    const name = commandQueueName(hostId);
    ch = {
      queue: new Queue(name, {
        connection: createRedis({ forBullmq: true, name: 'troupe-commands' }),
        prefix,
        defaultJobOptions: { attempts: 1, removeOnComplete: { age: 300, count: 1000 }, removeOnFail: { age: 3600, count: 1000 } },
      }),
      events: new QueueEvents(name, { connection: createRedis({ forBullmq: true, name: 'troupe-command-acks' }), prefix }),
    };
    channels.set(hostId, ch);
  }
  return ch;
}

/** What a command answers when its sandbox is on no host: nothing to act on (there is no container). */
const NOTHING: { [K in CommandType]?: CommandAnswers[K] } = {
  'sandbox.pause': { paused: false },
  'sandbox.resume': { resumed: false },
  'sandbox.remove': { removed: false },
  'session.release': { released: false },
};

/** Sends one command to the host of its sandbox and resolves with that host's answer. */
export async function send<T extends CommandType>(command: Extract<Command, { type: T }>, ownTimeoutMs = COMMAND_TIMEOUT_MS[command.type]): Promise<CommandAnswers[T]> {
  const timeoutMs = Math.min(ownTimeoutMs, config.commandTimeoutMs ?? Infinity);
  // Only ensure places a sandbox; the others act on a container that exists on its host, or on nothing.
  const c = command as Command;
  const hostId = c.type === 'session.release'
    ? await hostForSession(c.sessionId)
    : await hostForSandbox(c.sandboxId, { place: c.type === 'sandbox.ensure' });
  if (!hostId) {
    const nothing = NOTHING[command.type];
    if (nothing) return nothing as CommandAnswers[T];
    if (command.type === 'sandbox.exec') throw unprocessable('the sandbox has no container yet (its session has not started)');
    throw unavailable(await noHostMessage(), 10);
  }
  const { queue: q, events: ev } = channel(hostId);
  await ev.waitUntilReady();
  const job = await q.add(command.type, command);
  try {
    return (await job.waitUntilFinished(ev, timeoutMs)) as CommandAnswers[T];
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (message.startsWith(REFUSED_PREFIX)) throw unprocessable(message.slice(REFUSED_PREFIX.length));
    if (/timed out|ttl/i.test(message)) {
      throw unavailable(
        `No worker confirmed "${command.type}" within ${Math.round(timeoutMs / 1000)}s (host "${hostId}"). What was asked is recorded and a worker will carry it out when one is running; check that workers are up (GET /readyz shows them) and retry.`,
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
  const all = [...channels.values()];
  channels.clear();
  await Promise.all(all.flatMap((c) => [c.queue.close(), c.events.close()]));
}
