/** The process-wide sandbox driver (Docker). Nothing outside runtime/sandbox/ talks to the engine. */
import Docker from 'dockerode';
import { config } from '../../config.js';
import { DockerSandboxDriver } from './docker-driver.js';
import type { SandboxDriver } from './driver.js';

let driver: SandboxDriver | undefined;
/** The Docker driver on DOCKER_HOST (or the default socket). */
export function sandboxDriver(): SandboxDriver {
  driver ??= new DockerSandboxDriver({ docker: new Docker(), instance: config.instance });
  return driver;
}

/** Docker connection options for an engine address as DOCKER_HOST spells it (unix:// or tcp://). */
export function dockerOptions(engine: string): Docker.DockerOptions {
  if (engine.startsWith('unix://')) return { socketPath: engine.slice('unix://'.length) };
  const u = new URL(engine.replace(/^tcp:/, 'http:'));
  return { host: u.hostname, port: Number(u.port || 2375), protocol: 'http' };
}

/**
 * A driver for another host's engine (no warm pool): a draining host copies a sandbox's files
 * into the container it makes there, through the two engines' archive APIs.
 */
export function driverForEngine(engine: string): SandboxDriver {
  return new DockerSandboxDriver({ docker: new Docker(dockerOptions(engine)), instance: config.instance, executor: false });
}
