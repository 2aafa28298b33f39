import type { Readable, Writable } from 'node:stream';

/**
 * The one interface through which Troupe touches a container engine. Docker (dockerode) is the
 * implementation that ships; another engine only has to implement this.
 */
export interface SandboxSpec {
  /** Troupe sandbox id: becomes the container name `troupe-sbx-<id>` and a label. */
  sandboxId: string;
  projectId: string;
  /** Session that owns the sandbox, when it has its own (label only). */
  sessionId?: string;
  image: string;
  env?: Record<string, string>;
  /** Memory limit in MiB. @defaultValue 512 */
  memoryMb?: number;
  /** CPU limit in cores. @defaultValue 1 */
  cpus?: number;
  /** Max processes. @defaultValue 256 */
  pidsLimit?: number;
  /** `none` (default) or `bridge`. */
  network?: 'none' | 'bridge';
  /**
   * Run as this `uid[:gid]`. Unset: the image's own user when it is a numeric non-root one, else
   * 1000:1000. Root (`root`, `0`, gid 0) is refused: containers never run as root.
   */
  user?: string;
  /** Extra labels. */
  labels?: Record<string, string>;
}

export interface ContainerInfo {
  id: string;
  name: string;
  /** Docker state: created | running | paused | exited | dead | removing | restarting */
  state: string;
  labels: Record<string, string>;
  /** When the engine created it (ms since the epoch). */
  createdAt?: number;
}

/** Name prefixes: a sandbox's container, and a warm-pool container not yet claimed. */
export const SANDBOX_NAME_PREFIX = 'troupe-sbx-';
export const POOL_NAME_PREFIX = 'troupe-pool-';

/**
 * The sandbox a container belongs to: its name says so (containers claimed from the warm pool
 * carry no sandbox label), else its label; null for an unclaimed pool container.
 */
export function sandboxIdOf(c: ContainerInfo): string | null {
  if (c.name.startsWith(SANDBOX_NAME_PREFIX)) return c.name.slice(SANDBOX_NAME_PREFIX.length);
  return c.labels['troupe.sandbox'] ?? null;
}

/**
 * Exit code of a command killed because `timeoutMs` ran out (`timedOut: true`), whatever the
 * killed process returned (as coreutils `timeout` reports it).
 */
export const EXIT_TIMED_OUT = 124;
/**
 * Exit code of a command stopped by its abort signal (`aborted: true`), whether it was killed
 * while running or never started because the signal had already fired: 128 + SIGINT, what a
 * shell reports for an interrupted command. Every exec path of every driver reports this one code,
 * whatever the killed process returned; a run killed from elsewhere (`kill(containerId, runId)`)
 * reports its real exit code instead (137 for SIGKILL).
 */
export const EXIT_ABORTED = 130;

export interface ExecOptions {
  /** Shell command, run as `sh -c <command>` in the workdir. */
  command: string;
  /** Kill the command after this many ms (exit code {@link EXIT_TIMED_OUT}). */
  timeoutMs?: number;
  /** Aborting kills the command's process group inside the container (exit code {@link EXIT_ABORTED}). */
  signal?: AbortSignal;
  /** Called with each chunk of output as it arrives. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: string) => void;
  /** Identifies the run so it can be killed from anywhere (kill(containerId, runId)). */
  runId?: string;
  stdin?: string;
  workdir?: string;
  /** Called once the process is running in the container (the engine has finished starting it). */
  onStart?: () => void;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
}

/** The warm pool's settings (implemented in warm-pool.ts; declared here, where the driver offers it). */
export interface WarmPoolOptions {
  /** Containers kept ready per shape; 0 disables the pool. */
  size: number;
  /** Pooled containers are replaced at this age. */
  maxAgeMs: number;
  /** Shapes not asked for in this long stop being refilled (the default shape never expires). */
  demandTtlMs?: number;
}

export interface ExecStreamOptions {
  /** Program and its arguments, run as given: no shell parses them. */
  argv: string[];
  /** Extra environment for the process (on top of the container's). */
  env?: Record<string, string>;
  /** @defaultValue '/workspace' */
  workdir?: string;
}

/**
 * A process in the container attached by its standard streams, for long-lived conversations such
 * as an MCP stdio server. Output is not collected or capped: the caller reads it as it comes.
 */
export interface ExecStream {
  /** The process's stdin. Ending it closes the process's stdin; writes after the process ended are dropped. */
  stdin: Writable;
  /** Ends when the process has ended (or the stream was closed). */
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code once the process is gone: EXIT_ABORTED after kill(), -1 when the engine cannot tell. */
  exited: Promise<number>;
  /** Kills the process and everything it started (its process group), then detaches. */
  kill(): Promise<void>;
  /**
   * Detaches without killing: the process sees end-of-file on stdin, which is how a stdio server
   * is told to exit. Sends nothing to the engine, so it is safe on a container being frozen.
   */
  close(): void;
}

export interface SandboxDriver {
  /** Creates and starts the container, or returns the existing one for this sandbox id. */
  ensure(spec: SandboxSpec): Promise<ContainerInfo>;
  /** Finds the container of a sandbox by name, whatever its state; null if none. */
  find(sandboxId: string): Promise<ContainerInfo | null>;
  /** Lists every container Troupe manages (by label), optionally only this runtime instance's. */
  list(filter?: { instance?: string }): Promise<ContainerInfo[]>;
  inspect(containerId: string): Promise<ContainerInfo | null>;
  exec(containerId: string, opts: ExecOptions): Promise<ExecResult>;
  /** Starts a process attached by stdin/stdout/stderr (see ExecStream). */
  execStream(containerId: string, opts: ExecStreamOptions): Promise<ExecStream>;
  /** Kills a running exec started with `runId` (its whole process group). */
  kill(containerId: string, runId: string): Promise<void>;
  pause(containerId: string): Promise<void>;
  unpause(containerId: string): Promise<void>;
  /** Stops and removes; no error when already gone. */
  remove(containerId: string): Promise<void>;
  writeFile(containerId: string, path: string, content: string | Buffer): Promise<void>;
  /** The whole file, held in memory: for files known to be small. */
  readFile(containerId: string, path: string): Promise<Buffer>;
  /**
   * The first `maxBytes` of a regular file and its full size (`data.length < size`: there is more).
   * Reads no further than that, so a huge or sparse file costs no more than `maxBytes`.
   */
  readFileHead(containerId: string, path: string, maxBytes: number): Promise<{ data: Buffer; size: number }>;
  /**
   * Unpacks a tar archive into directory `dir` of the container (which must exist), as the engine
   * does: entries keep the owners and modes the archive gives them.
   */
  putArchive(containerId: string, dir: string, archive: Readable | Buffer): Promise<void>;
  /**
   * A tar archive of `path` (a file or a whole directory, under its own name); ENOENT when it is
   * missing. Used to read a repository out of a sandbox and to move `/workspace` between hosts.
   */
  getArchive(containerId: string, path: string): Promise<Readable>;
  ping(): Promise<boolean>;
  /**
   * Optional start fast path: keep pre-created, paused containers ready for sandboxes shaped like
   * `keepWarm` (and, for a while, like any other poolable sandbox asked for). Worker processes only.
   */
  startWarmPool?(opts: WarmPoolOptions, keepWarm: SandboxSpec[], onError?: (err: unknown, what: string) => void): unknown;
  stopWarmPool?(): Promise<void>;
  /** The engine is back after an outage: drop pooled containers that died with it and refill. */
  refreshWarmPool?(): Promise<void>;
}
