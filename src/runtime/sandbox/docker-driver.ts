import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { shellQuote } from '../../lib/shell.js';
import {
  EXIT_ABORTED, EXIT_TIMED_OUT, SANDBOX_NAME_PREFIX,
  type ContainerInfo, type ExecOptions, type ExecResult, type ExecStream, type ExecStreamOptions, type SandboxDriver, type SandboxSpec,
} from './driver.js';
import { Executor, MAX_RUN_ID } from './executor.js';
import { containerUser, isRootUser } from '../../lib/sandbox-policy.js';
import { WarmPool, type WarmPoolOptions } from './warm-pool.js';

const NAME_PREFIX = SANDBOX_NAME_PREFIX;
const DEFAULT_WORKDIR = '/workspace';
/** Sandbox images run their agent as uid/gid 1000; files we drop in must be theirs to edit. */
const AGENT_UID = 1000;
const AGENT_GID = 1000;
const OUTPUT_CAP = 1024 * 1024;
const TRUNCATED = '...[truncated]';
/** How long a killed exec may keep its stream open before we stop waiting for it. */
const KILL_GRACE_MS = 2000;

/**
 * Runs the user's command as the leader of a new process group (so kill() can take down everything
 * it spawned) and records that group's id in a pid file named after the run. The command travels
 * in TROUPE_CMD rather than being spliced into the script, so no quoting can break it.
 * The group leader is started in the background from a shell that waits for it: a docker exec
 * process is already a group leader, and busybox setsid forks (losing the exit code) when it is.
 * Background jobs get /dev/null as stdin, hence the detour through fd 3.
 */
const RUN_SCRIPT = [
  'f=/tmp/.troupe-run-$TROUPE_RUN.pid',
  `inner='echo $$ > "$0"; c=$TROUPE_CMD; unset TROUPE_CMD TROUPE_RUN; exec sh -c "$c"'`,
  'exec 3<&0',
  'if command -v setsid >/dev/null 2>&1; then setsid sh -c "$inner" "$f" <&3 3<&- &',
  'else sh -c "$inner" "$f" <&3 3<&- & fi',
  // Silenced so the shell's "Killed" job notice doesn't land in the command's stderr.
  'exec 3<&- 2>/dev/null; wait $!; rc=$?; rm -f "$f"; exit $rc',
].join('\n');

/** Waits (up to 2 s) for the pid file, since a kill can race the start of the run it targets. */
const KILL_SCRIPT = [
  'f=/tmp/.troupe-run-$TROUPE_RUN.pid; i=0',
  'while [ ! -s "$f" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done',
  'p=$(cat "$f" 2>/dev/null) || exit 0',
  'kill -KILL -"$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; rm -f "$f"; exit 0',
].join('\n');

type DockerError = Error & { statusCode?: number; json?: { message?: string } };
const statusOf = (err: unknown) => (err as DockerError)?.statusCode;

export class DockerSandboxDriver implements SandboxDriver {
  private readonly docker: Docker;
  private readonly instance: string;

  /** Persistent executors by container (the fast path; see executor.ts). */
  private readonly executors = new Map<string, Promise<Executor | null>>();
  private readonly useExecutor: boolean;
  /** Pre-created, paused containers (the start fast path; see warm-pool.ts). Workers only. */
  private pool: WarmPool | null = null;

  constructor(opts: { docker?: Docker; instance: string; executor?: boolean }) {
    this.docker = opts.docker ?? new Docker();
    this.instance = opts.instance;
    this.useExecutor = opts.executor ?? process.env.TROUPE_EXECUTOR !== 'off';
  }

  /** The container's executor if it has (or can start) an idle one; null means use a plain exec. */
  private async executorFor(containerId: string): Promise<Executor | null> {
    const existing = this.executors.get(containerId);
    const current = existing ? await existing : undefined;
    if (current === null) return null; // this image cannot host one
    if (current?.tryClaim()) return current;
    if (current?.busy) return null; // one command at a time; others take the exec path
    if (this.executors.get(containerId) === existing) {
      this.executors.set(containerId, Executor.start(this.docker, containerId).catch(() => null));
    }
    const ex = await this.executors.get(containerId);
    return ex?.tryClaim() ? ex : null;
  }

  private async execFast(ex: Executor, containerId: string, opts: ExecOptions): Promise<ExecResult> {
    const runId = checkRunId(opts.runId ?? randomUUID());
    const out = new Collector('stdout', opts.onOutput);
    const err = new Collector('stderr', opts.onOutput);
    const code = ex.run(runId, opts.command, opts.workdir ?? DEFAULT_WORKDIR, (name, text) => (name === 'stdout' ? out : err).add(text));
    // Nothing new starts in Docker for this run, so Docker is settled as of now.
    opts.onStart?.();
    let stopped: 'timeout' | 'abort' | undefined;
    const stop = (why: 'timeout' | 'abort') => {
      if (stopped) return;
      stopped = why;
      void this.kill(containerId, runId).finally(() => {
        // If the end marker does not follow the kill, the executor is not to be trusted any more.
        // (Only if it is still on this run: by then it may be running the next command.)
        setTimeout(() => ex.isRunning(runId) && ex.retire(), KILL_GRACE_MS).unref();
      });
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let exitCode: number | null;
    try {
      exitCode = await code;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
    return withExitCode({ stdout: out.text(), stderr: err.text(), timedOut: stopped === 'timeout', aborted: stopped === 'abort' }, async () => exitCode ?? (await this.unknownExit()));
  }

  startWarmPool(opts: WarmPoolOptions, keepWarm: SandboxSpec[], onError?: (err: unknown, what: string) => void) {
    if (this.pool || opts.size <= 0) return this.pool;
    this.pool = new WarmPool(this.docker, {
      createOptions: (spec, name, labels) => this.createOptions(spec, name, labels),
      prepare: async (id) => {
        if (!this.useExecutor) return;
        const ex = Executor.start(this.docker, id).catch(() => null);
        this.executors.set(id, ex);
        await ex;
      },
      forget: (id) => this.forgetExecutor(id),
    }, opts, onError);
    for (const spec of keepWarm) this.pool.warm(spec, true);
    return this.pool;
  }

  async refreshWarmPool(): Promise<void> {
    await this.pool?.refresh();
  }

  async stopWarmPool(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  async ensure(spec: SandboxSpec): Promise<ContainerInfo> {
    const name = NAME_PREFIX + spec.sandboxId;
    const existing = await this.inspect(name);
    if (existing) return this.startIfStopped(existing);
    // A claim failure is never the session's problem: fall through to a fresh container.
    const pooled = await this.pool?.claim(spec, name).catch(() => null);
    if (pooled) return pooled;
    try {
      const container = await this.docker.createContainer(await this.createOptions(spec, name));
      return await this.startIfStopped({ id: container.id, name, state: 'created', labels: {} });
    } catch (err) {
      // Another ensure() for the same sandbox won the race to the name: adopt its container. The
      // engine reserves the name before the container is inspectable, so give it a moment.
      if (statusOf(err) === 409) {
        for (let i = 0; i < 20; i++) {
          const winner = await this.inspect(name);
          if (winner) return this.startIfStopped(winner);
          await sleep(50);
        }
      }
      if (statusOf(err) === 404 && /image/i.test(String((err as Error).message))) {
        throw new Error(
          `Sandbox image "${spec.image}" not found: build it with "npm run images" or set TROUPE_DEFAULT_IMAGE`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * The container always runs as a non-root user (SPEC section 10): the spec's own (root refused),
   * else the image's numeric non-root user, else 1000:1000. Read from the image at create time, so
   * a rebuilt image is seen; a missing image gets the default and fails at create as before.
   */
  private async userFor(spec: SandboxSpec): Promise<string> {
    if (spec.user !== undefined) {
      if (isRootUser(spec.user)) throw new Error(`Refusing to run a sandbox as "${spec.user}": containers never run as root`);
      return spec.user;
    }
    const image = await this.docker.getImage(spec.image).inspect().catch(() => null);
    return containerUser(image?.Config?.User);
  }

  /** `poolLabels` given: a pooled container, which belongs to no sandbox until it is claimed. */
  private async createOptions(spec: SandboxSpec, name: string, poolLabels?: Record<string, string>): Promise<Docker.ContainerCreateOptions> {
    const user = await this.userFor(spec);
    const memory = (spec.memoryMb ?? 512) * 1024 * 1024;
    const labels: Record<string, string> = poolLabels
      ? { ...poolLabels, 'troupe.managed': 'true', 'troupe.instance': this.instance }
      : {
          ...spec.labels,
          'troupe.managed': 'true',
          'troupe.sandbox': spec.sandboxId,
          'troupe.project': spec.projectId,
          'troupe.instance': this.instance,
        };
    if (spec.sessionId && !poolLabels) labels['troupe.session'] = spec.sessionId;
    return {
      name,
      Image: spec.image,
      User: user,
      Labels: labels,
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      HostConfig: {
        NetworkMode: spec.network === 'bridge' ? 'bridge' : 'none',
        Memory: memory,
        // Equal to Memory so the limit can't be dodged by swapping.
        MemorySwap: memory,
        NanoCpus: Math.round((spec.cpus ?? 1) * 1e9),
        PidsLimit: spec.pidsLimit ?? 256,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: false,
        // Reaps the orphans that killed process groups leave behind (the engine injects the binary).
        Init: true,
      },
    };
  }

  private async startIfStopped(info: ContainerInfo): Promise<ContainerInfo> {
    // Paused sandboxes are parked on purpose; waking them is the caller's decision.
    if (info.state === 'running' || info.state === 'paused') return info;
    try {
      await this.docker.getContainer(info.id).start();
    } catch (err) {
      // A concurrent ensure() may have started it first (304, or 409/500 depending on timing).
      const now = await this.inspect(info.id);
      if (now && (now.state === 'running' || now.state === 'paused')) return now;
      throw err;
    }
    return (await this.inspect(info.id)) ?? info;
  }

  async find(sandboxId: string): Promise<ContainerInfo | null> {
    // By name: a container claimed from the warm pool has no sandbox label.
    return this.inspect(NAME_PREFIX + sandboxId);
  }

  async list(filter?: { instance?: string }): Promise<ContainerInfo[]> {
    const label = ['troupe.managed=true'];
    if (filter?.instance) label.push(`troupe.instance=${filter.instance}`);
    const found = await this.docker.listContainers({ all: true, filters: { label } });
    return found.map(fromListing);
  }

  async inspect(containerId: string): Promise<ContainerInfo | null> {
    try {
      const c = await this.docker.getContainer(containerId).inspect();
      return {
        id: c.Id, name: c.Name.replace(/^\//, ''), state: c.State.Status, labels: c.Config.Labels ?? {}, createdAt: Date.parse(c.Created),
      };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async exec(containerId: string, opts: ExecOptions): Promise<ExecResult> {
    const runId = checkRunId(opts.runId ?? randomUUID());
    if (opts.signal?.aborted) return { exitCode: EXIT_ABORTED, stdout: '', stderr: '', timedOut: false, aborted: true };
    if (this.useExecutor && opts.stdin === undefined && runId.length <= MAX_RUN_ID) {
      const ex = await this.executorFor(containerId).catch(() => null);
      if (ex) return this.execFast(ex, containerId, { ...opts, runId });
    }

    const hasStdin = opts.stdin !== undefined;
    const exec = await this.docker.getContainer(containerId).exec({
      Cmd: ['sh', '-c', RUN_SCRIPT],
      Env: [`TROUPE_CMD=${opts.command}`, `TROUPE_RUN=${runId}`],
      WorkingDir: opts.workdir ?? DEFAULT_WORKDIR,
      AttachStdin: hasStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = (await exec.start({ hijack: hasStdin, stdin: hasStdin, Tty: false })) as Duplex;
    opts.onStart?.();

    const out = new Collector('stdout', opts.onOutput);
    const err = new Collector('stderr', opts.onOutput);
    this.docker.modem.demuxStream(stream, out.sink(), err.sink());
    // Half-closing the hijacked socket is what tells the engine to close the command's stdin.
    if (hasStdin) stream.end(opts.stdin);

    let stopped: 'timeout' | 'abort' | undefined;
    let finishEarly = () => {};
    const ended = new Promise<void>((resolve) => {
      finishEarly = resolve;
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
      stream.on('error', () => resolve());
    });
    const stop = (why: 'timeout' | 'abort') => {
      if (stopped) return;
      stopped = why;
      void this.kill(containerId, runId).finally(() => {
        // Something detached from the group may still hold the output pipe open; don't wait on it.
        setTimeout(() => {
          stream.destroy();
          finishEarly();
        }, KILL_GRACE_MS).unref();
      });
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    try {
      await ended;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }

    return withExitCode({ stdout: out.text(), stderr: err.text(), timedOut: stopped === 'timeout', aborted: stopped === 'abort' }, async () => (await this.exitCodeOf(exec).catch(() => null)) ?? (await this.unknownExit()));
  }

  async execStream(containerId: string, opts: ExecStreamOptions): Promise<ExecStream> {
    const runId = randomUUID();
    const env = Object.entries(opts.env ?? {}).filter(([k]) => k !== 'TROUPE_CMD' && k !== 'TROUPE_RUN');
    // Through RUN_SCRIPT like exec(), so kill() can take down the process group by runId.
    const exec = await this.docker.getContainer(containerId).exec({
      Cmd: ['sh', '-c', RUN_SCRIPT],
      Env: [...env.map(([k, v]) => `${k}=${v}`), `TROUPE_CMD=${opts.argv.map(shellQuote).join(' ')}`, `TROUPE_RUN=${runId}`],
      WorkingDir: opts.workdir ?? DEFAULT_WORKDIR,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const socket = (await exec.start({ hijack: true, stdin: true, Tty: false })) as Duplex;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(socket, stdout, stderr);
    const ended = new Promise<void>((resolve) => {
      socket.once('end', () => resolve());
      socket.once('close', () => resolve());
      socket.on('error', () => resolve());
    });
    let killed = false;
    const exited = ended.then(async () => {
      stdout.end();
      stderr.end();
      return killed ? EXIT_ABORTED : ((await this.exitCodeOf(exec)) ?? -1);
    });
    const stdin = new Writable({
      // The process may be gone already; its end is reported by `exited`, not by stdin errors.
      write: (chunk: Buffer, _enc, done) => (socket.writable ? socket.write(chunk, () => done()) : done()),
      // Half-closing the hijacked socket is what tells the engine to close the process's stdin.
      final: (done) => (socket.writable && socket.end(), done()),
    });
    return {
      stdin, stdout, stderr, exited,
      kill: async () => {
        killed = true;
        await this.kill(containerId, runId);
        socket.destroy();
        await exited;
      },
      close: () => {
        stdin.end();
        socket.destroy();
      },
    };
  }

  /** The stream can end a moment before the engine records the exit, so poll briefly. */
  private async exitCodeOf(exec: Docker.Exec): Promise<number | null> {
    for (let i = 0; i < 20; i++) {
      const info = await exec.inspect().catch(() => null);
      if (!info) return null;
      if (!info.Running && info.ExitCode !== null) return info.ExitCode;
      await sleep(50);
    }
    return null;
  }

  async kill(containerId: string, runId: string): Promise<void> {
    try {
      const exec = await this.docker.getContainer(containerId).exec({
        Cmd: ['sh', '-c', KILL_SCRIPT],
        Env: [`TROUPE_RUN=${checkRunId(runId)}`],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: false, stdin: false });
      await new Promise<void>((resolve) => {
        stream.on('end', resolve).on('close', resolve).on('error', () => resolve());
        stream.resume();
      });
    } catch {
      // The container is gone or stopped: so is the run.
    }
  }

  async pause(containerId: string): Promise<void> {
    await this.docker.getContainer(containerId).pause().catch(ignoreMessage(/already paused/i));
  }

  async unpause(containerId: string): Promise<void> {
    await this.docker.getContainer(containerId).unpause().catch(ignoreMessage(/not paused/i));
  }

  private forgetExecutor(containerId: string) {
    void this.executors.get(containerId)?.then((ex) => ex?.retire());
    this.executors.delete(containerId);
  }

  async remove(containerId: string): Promise<void> {
    this.forgetExecutor(containerId);
    await this.docker.getContainer(containerId).remove({ force: true }).catch((err) => {
      // 409 "removal already in progress" means someone else is doing our job.
      if (statusOf(err) !== 404 && !(statusOf(err) === 409 && /in progress/i.test(err.message))) throw err;
    });
  }

  async writeFile(containerId: string, filePath: string, content: string | Buffer): Promise<void> {
    const abs = path.posix.resolve(DEFAULT_WORKDIR, filePath);
    const dir = path.posix.dirname(abs);
    // mkdir as the sandbox user so new parents belong to the agent, not to root via the archive.
    await this.exec(containerId, { command: `mkdir -p ${shellQuote(dir)}`, workdir: '/' });
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const pack = tar.pack();
    pack.entry({ name: path.posix.basename(abs), size: data.length, mode: 0o644, uid: AGENT_UID, gid: AGENT_GID }, data);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    const archive = Buffer.concat(chunks);
    try {
      await this.docker.getContainer(containerId).putArchive(archive, { path: dir });
    } catch (err) {
      if (statusOf(err) === 404) throw new Error(`Cannot write ${abs}: directory ${dir} does not exist`, { cause: err });
      throw err;
    }
  }

  async readFile(containerId: string, filePath: string): Promise<Buffer> {
    return (await this.readFileHead(containerId, filePath, Infinity)).data;
  }

  async readFileHead(containerId: string, filePath: string, maxBytes: number): Promise<{ data: Buffer; size: number }> {
    const abs = path.posix.resolve(DEFAULT_WORKDIR, filePath);
    let archive: Readable;
    try {
      archive = (await this.docker.getContainer(containerId).getArchive({ path: abs })) as Readable;
    } catch (err) {
      if (statusOf(err) === 404) throw Object.assign(new Error(`No such file: ${abs}`), { code: 'ENOENT' });
      throw err;
    }
    const extract = tar.extract();
    archive.pipe(extract);
    try {
      for await (const entry of extract) {
        if (entry.header.type !== 'file') throw new Error(`Not a regular file: ${abs} (${entry.header.type})`);
        const chunks: Buffer[] = [];
        let got = 0;
        for await (const chunk of entry) {
          const c = chunk as Buffer;
          chunks.push(got + c.length > maxBytes ? c.subarray(0, maxBytes - got) : c);
          got += c.length;
          if (got >= maxBytes) break;
        }
        const data = Buffer.concat(chunks);
        return { data, size: entry.header.size ?? data.length };
      }
    } finally {
      // We only want (the head of) the first entry: closing the response stops the engine sending.
      archive.destroy();
      extract.destroy();
    }
    throw new Error(`Empty archive for ${abs}`);
  }

  async putArchive(containerId: string, dir: string, archive: Readable | Buffer): Promise<void> {
    const abs = path.posix.resolve(DEFAULT_WORKDIR, dir);
    try {
      await this.docker.getContainer(containerId).putArchive(archive, { path: abs });
    } catch (err) {
      if (statusOf(err) === 404) throw new Error(`Cannot unpack into ${abs}: no such directory`, { cause: err });
      throw err;
    }
  }

  async getArchive(containerId: string, filePath: string): Promise<Readable> {
    const abs = path.posix.resolve(DEFAULT_WORKDIR, filePath);
    try {
      return (await this.docker.getContainer(containerId).getArchive({ path: abs })) as Readable;
    } catch (err) {
      if (statusOf(err) === 404) throw Object.assign(new Error(`No such file or directory: ${abs}`), { code: 'ENOENT' });
      throw err;
    }
  }

  /**
   * A command whose end the engine never reported: -1, unless the engine itself went away (it
   * restarted or died under the command), which is thrown as a connection error so the
   * activation is retried (which records the call as interrupted, or runs it again with
   * rerun_interrupted_tools) rather than recording a made-up result.
   */
  private async unknownExit(): Promise<number> {
    if (await this.ping()) return -1;
    throw Object.assign(new Error('the Docker engine went away while the command ran'), { code: 'ECONNRESET' });
  }

  async ping(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }
}

/** Accumulates one output stream: decodes UTF-8 across chunk boundaries and caps what's kept. */
class Collector {
  private readonly decoder = new StringDecoder('utf8');
  private kept = '';
  private truncated = false;

  constructor(
    private readonly name: 'stdout' | 'stderr',
    private readonly onOutput?: ExecOptions['onOutput'],
  ) {}

  sink(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.push(this.decoder.write(chunk));
        done();
      },
    });
  }

  add(text: string) {
    this.push(text);
  }

  private push(text: string) {
    if (!text) return;
    try {
      this.onOutput?.(this.name, text);
    } catch {
      // A faulty listener must not break the stream (an error here would kill the demuxer).
    }
    if (this.truncated) return;
    const room = OUTPUT_CAP - this.kept.length;
    if (text.length > room) {
      this.kept += text.slice(0, room);
      this.truncated = true;
    } else {
      this.kept += text;
    }
  }

  text(): string {
    this.push(this.decoder.end());
    return this.truncated ? this.kept + TRUNCATED : this.kept;
  }
}

function fromListing(c: Docker.ContainerInfo): ContainerInfo {
  return { id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State, labels: c.Labels ?? {}, createdAt: c.Created * 1000 };
}

/** runIds end up in a file path inside the container. */
function checkRunId(runId: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(runId)) throw new Error(`Invalid runId "${runId}"`);
  return runId;
}

/** Timeout and abort have one exit code each, whatever the killed process returned (see driver.ts). */
async function withExitCode(r: Omit<ExecResult, 'exitCode'>, exitCode: () => Promise<number>): Promise<ExecResult> {
  if (r.timedOut) return { ...r, exitCode: EXIT_TIMED_OUT };
  if (r.aborted) return { ...r, exitCode: EXIT_ABORTED };
  return { ...r, exitCode: await exitCode() };
}

/** Matched on the message: engines disagree on the status (20.10 answers "not paused" with 500). */
function ignoreMessage(message: RegExp) {
  return (err: DockerError) => {
    if (!message.test(err.json?.message ?? err.message)) throw err;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
