/**
 * The worker's side of the command channel: the only code that acts on a container because the
 * api asked. Each command first reads what Postgres says the sandbox should be (the api records
 * its intent before sending), so a late, repeated or out-of-order command converges on the
 * latest intent instead of undoing it.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { config } from '../config.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import { createRedis } from '../lib/redis.js';
import type { Logger } from '../log.js';
import { COMMAND_TIMEOUT_MS, REFUSED_PREFIX, commandQueueName, type Command, type CommandAnswers } from '../commands/protocol.js';
import { broadcastAbort, type ControlListener } from './control.js';
import { ensureContainer } from './sandbox/containers.js';
import { exclusive, reconcile, until, type Converged } from './sandbox-lane.js';
import type { SandboxDriver } from './sandbox/driver.js';

/** How long a pause waits for the running activation to stand down before freezing anyway. */
const RELEASE_WAIT_MS = 2500;
/** How long before the api's own deadline a lifecycle command answers, whatever Docker is doing. */
const ANSWER_MARGIN_MS = 2500;

export interface CommandDeps {
  driver: SandboxDriver;
  control: ControlListener;
  log: Logger;
}

const refuse = (why: string) => new UnrecoverableError(REFUSED_PREFIX + why);

/**
 * When a lifecycle command must answer at the latest: a little before the api stops waiting for
 * it (its command timeout, counted from when the api sent it), so a slow round never turns into
 * "no answer". The intent is recorded; the round carries on and converges the container anyway.
 */
function answerBy(cmd: Command, sentAt: number): number {
  const budget = Math.min(COMMAND_TIMEOUT_MS[cmd.type], config.commandTimeoutMs ?? Infinity);
  return Math.max(Date.now() + 500, sentAt + budget - ANSWER_MARGIN_MS);
}

const late = (log: Logger, cmd: Command) => (): Converged => {
  log.warn({ command: cmd.type, sandbox: 'sandboxId' in cmd ? cmd.sandboxId : undefined }, 'container not converged in time; answering now, the round carries on');
  return { intent: 'gone', container: 'other' };
};

/** `sentAt`: when the api sent the command (the job's timestamp), for the answer deadline. */
export async function handleCommand(cmd: Command, deps: CommandDeps, sentAt = Date.now()): Promise<CommandAnswers[Command['type']]> {
  const { driver, control, log } = deps;
  switch (cmd.type) {
    case 'session.release': {
      await broadcastAbort(cmd.sessionId, cmd.reason);
      const released = cmd.wait ? await control.waitReleased(cmd.sessionId, cmd.activation, RELEASE_WAIT_MS) : false;
      return { released };
    }
    case 'sandbox.ensure': {
      const sb = await sandboxes.byId(cmd.sandboxId);
      if (!sb || sb.state === 'stopped') throw refuse('the sandbox was deleted');
      try {
        return { containerId: await ensureContainer(driver, sb) };
      } catch (err) {
        throw refuse((err as Error).message);
      }
    }
    // Pause, resume and remove converge the container on the recorded intent through the
    // sandbox's lane (sandbox-lane.ts): never two Docker calls on one sandbox at once, and a
    // burst of commands shares rounds instead of queueing one Docker call each. What is not a
    // Docker call (the stand-down of an activation) happens before, outside the lane.
    case 'sandbox.pause': {
      if (cmd.releaseOf) {
        await broadcastAbort(cmd.releaseOf.sessionId, 'pause');
        // Docker (20.10) wedges a container whose exec starts while it is frozen: let the
        // activation stand down first. Bounded, so a dead worker cannot hold the pause up.
        await control.waitReleased(cmd.releaseOf.sessionId, cmd.releaseOf.activation, RELEASE_WAIT_MS);
      }
      const c = await until(reconcile(driver, log, cmd.sandboxId), answerBy(cmd, sentAt), late(log, cmd));
      return { paused: c.container === 'paused' };
    }
    case 'sandbox.resume': {
      const c = await until(reconcile(driver, log, cmd.sandboxId, cmd.killRuns), answerBy(cmd, sentAt), late(log, cmd));
      return { resumed: c.container === 'running' };
    }
    case 'sandbox.remove': {
      if (cmd.abortSession) await broadcastAbort(cmd.abortSession, 'stop');
      const c = await until(reconcile(driver, log, cmd.sandboxId), answerBy(cmd, sentAt), late(log, cmd));
      return { removed: c.container === 'removed' };
    }
    case 'sandbox.exec': {
      // On the lane, so no pause can freeze the container between the check and the exec's start.
      return exclusive(cmd.sandboxId, async () => {
        const sb = await sandboxes.byId(cmd.sandboxId);
        // Never exec into a frozen container (see above).
        if (!sb?.container_id || sb.state !== 'active') throw refuse(`the sandbox is ${sb?.state ?? 'gone'}${sb && !sb.container_id ? ' (no container yet)' : ''}`);
        if ((await driver.inspect(sb.container_id))?.state === 'paused') throw refuse('the sandbox is paused');
        const r = await driver.exec(sb.container_id, { command: cmd.command, timeoutMs: cmd.timeoutMs });
        return { exitCode: r.exitCode, output: (r.stdout + r.stderr).slice(0, 64 * 1024) };
      });
    }
  }
}

/** Takes commands off this host's queue; many at once, so a slow engine call never holds up a pause. */
export function startCommandWorker(deps: CommandDeps, hostId = config.hostId): { close(): Promise<void> } {
  const worker = new Worker(commandQueueName(hostId), async (job) => handleCommand(job.data as Command, deps, job.timestamp), {
    connection: createRedis({ forBullmq: true, name: 'troupe-command-worker' }),
    prefix: `${config.redisPrefix}:bull`,
    concurrency: 50,
  });
  worker.on('error', (err) => deps.log.error({ err }, 'command worker error'));
  return { close: () => worker.close() };
}
