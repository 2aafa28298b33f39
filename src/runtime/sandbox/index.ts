/** The process-wide sandbox driver (Docker). */
import Docker from 'dockerode';
import { config } from '../../config.js';
import { DockerSandboxDriver } from './docker-driver.js';
import type { SandboxDriver } from './driver.js';

let docker: Docker | undefined;
/** The dockerode client (DOCKER_HOST or the default socket); MCP stdio servers need it directly. */
export function dockerClient(): Docker {
  docker ??= new Docker();
  return docker;
}

let driver: SandboxDriver | undefined;
export function sandboxDriver(): SandboxDriver {
  driver ??= new DockerSandboxDriver({ docker: dockerClient(), instance: config.instance });
  return driver;
}
