/**
 * Puts a real process together: installs the service ports (src/domain/ports.ts) — commands to
 * the workers over the command queue, activations onto the session queue, the event pipeline
 * with its listeners, dashboard announcements over Redis. Every process entry (api, worker,
 * scripts that write) calls installDefaultPorts() before anything else runs; idempotent.
 */
import { queuedSandboxCommands } from './commands/client.js';
import { installPorts } from './domain/ports.js';
import { registerListeners } from './pipeline/listeners.js';
import { EventPipeline } from './pipeline/pipeline.js';
import { publishDashboard } from './realtime/bus.js';
import { enqueueActivation } from './runtime/queue.js';

let pipeline: EventPipeline | undefined;

/** This process's event pipeline (its listeners registered once). */
export function eventPipeline(): EventPipeline {
  pipeline ??= registerListeners(new EventPipeline());
  return pipeline;
}

export function installDefaultPorts(): void {
  installPorts({
    commands: queuedSandboxCommands,
    activations: { enqueue: async (sessionId, activation) => void (await enqueueActivation(sessionId, activation)) },
    events: eventPipeline(),
    dashboards: { emit: publishDashboard },
  });
}
