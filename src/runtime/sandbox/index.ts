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
