/** The process-wide sandbox driver (Docker). */
import Docker from 'dockerode';
import { config } from '../../config.js';
import { DockerSandboxDriver } from './docker-driver.js';
import type { SandboxDriver } from './driver.js';

let driver: SandboxDriver | undefined;
export function sandboxDriver(): SandboxDriver {
  driver ??= new DockerSandboxDriver({ docker: new Docker(), instance: config.instance });
  return driver;
}
