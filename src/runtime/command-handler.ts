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
import { REFUSED_PREFIX, commandQueueName, type Command, type CommandAnswers } from '../commands/protocol.js';
import { broadcastAbort, type ControlListener } from './control.js';
import { ensureContainer } from './sandbox/containers.js';
import type { SandboxDriver } from './sandbox/driver.js';

/** How long a pause waits for the running activation to stand down before freezing anyway. */
const RELEASE_WAIT_MS = 2500;

export interface CommandDeps {
  driver: SandboxDriver;
  control: ControlListener;
  log: Logger;
}

const refuse = (why: string) => new UnrecoverableError(REFUSED_PREFIX + why);

export async function handleCommand(cmd: Command, deps: CommandDeps): Promise<CommandAnswers[Command['type']]> {
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
    case 'sandbox.pause': {
      if (cmd.releaseOf) {
        await broadcastAbort(cmd.releaseOf.sessionId, 'pause');
        // Docker (20.10) wedges a container whose exec starts while it is frozen: let the
        // activation stand down first. Bounded, so a dead worker cannot hold the pause up.
        await control.waitReleased(cmd.releaseOf.sessionId, cmd.releaseOf.activation, RELEASE_WAIT_MS);
      }
      const sb = await sandboxes.byId(cmd.sandboxId);
      const containerId = sb?.state === 'paused' ? sb.container_id ?? (await driver.find(sb.id))?.id : undefined;
      if (!containerId) return { paused: false };
      await driver.pause(containerId).catch((err) => log.warn({ err, sandbox: cmd.sandboxId }, 'docker pause failed'));
      return { paused: true };
    }
    case 'sandbox.resume': {
      const sb = await sandboxes.byId(cmd.sandboxId);
      const containerId = sb?.state === 'active' ? sb.container_id ?? (await driver.find(sb.id))?.id : undefined;
      if (!containerId) return { resumed: false };
      const info = await driver.inspect(containerId);
      if (info?.state === 'paused') await driver.unpause(containerId).catch((err) => log.warn({ err, sandbox: cmd.sandboxId }, 'docker unpause failed'));
      // A tool call frozen mid-run is run again by the next activation: end the old run first
      // (same run id), so the kill cannot hit the new one.
      await Promise.all((cmd.killRuns ?? []).map((runId) => driver.kill(containerId, runId).catch(() => {})));
      return { resumed: true };
    }
    case 'sandbox.remove': {
      if (cmd.abortSession) await broadcastAbort(cmd.abortSession, 'stop');
      const sb = await sandboxes.byId(cmd.sandboxId);
      if (sb && sb.state !== 'stopped') return { removed: false }; // revived since: not ours to remove
      const containerId = sb?.container_id ?? (await driver.find(cmd.sandboxId))?.id;
      if (!containerId) return { removed: false };
      await driver.remove(containerId).catch((err) => log.warn({ err, sandbox: cmd.sandboxId }, 'container removal failed'));
      return { removed: true };
    }
    case 'sandbox.exec': {
      const sb = await sandboxes.byId(cmd.sandboxId);
      // Never exec into a frozen container (see above).
      if (!sb?.container_id || sb.state !== 'active') throw refuse(`the sandbox is ${sb?.state ?? 'gone'}${sb && !sb.container_id ? ' (no container yet)' : ''}`);
      const r = await driver.exec(sb.container_id, { command: cmd.command, timeoutMs: cmd.timeoutMs });
      return { exitCode: r.exitCode, output: (r.stdout + r.stderr).slice(0, 64 * 1024) };
    }
  }
}

/** Takes commands off this host's queue; many at once, so a slow engine call never holds up a pause. */
export function startCommandWorker(deps: CommandDeps, hostId = config.hostId): { close(): Promise<void> } {
  const worker = new Worker(commandQueueName(hostId), async (job) => handleCommand(job.data as Command, deps), {
    connection: createRedis({ forBullmq: true, name: 'troupe-command-worker' }),
    prefix: `${config.redisPrefix}:bull`,
    concurrency: 50,
  });
  worker.on('error', (err) => deps.log.error({ err }, 'command worker error'));
  return { close: () => worker.close() };
}
