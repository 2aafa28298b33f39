/**
 * A Docker engine of the cluster test's own, next to the machine's: its own socket, data root,
 * exec root, pid file, and its own bridge interface (a second engine with `--bridge=none` deletes
 * the first engine's docker0). Started, killed (-9) and restarted by the test; always removed at
 * the end with everything it made (containers, mounts, data, bridge).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { sleep } from '../support/wait.js';

const run = promisify(execFile);

export class OwnEngine {
  readonly dir: string;
  readonly socket: string;
  private child?: ChildProcess;

  constructor(readonly tag: string, readonly bridge: string, readonly subnet: string) {
    this.dir = `/tmp/tcl-${tag}`;
    this.socket = `${this.dir}/docker.sock`;
  }

  get host() {
    return `unix://${this.socket}`;
  }

  /** Creates the bridge (once) and starts dockerd; resolves when it answers. */
  async start(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const hasBridge = await run('ip', ['link', 'show', this.bridge]).then(() => true, () => false);
    if (!hasBridge) {
      await run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
      await run('ip', ['addr', 'add', this.subnet, 'dev', this.bridge]);
      await run('ip', ['link', 'set', this.bridge, 'up']);
    }
    const log = fs.openSync(`${this.dir}/dockerd.log`, 'a');
    this.child = spawn('dockerd', [
      '-H', this.host, '--data-root', `${this.dir}/data`, '--exec-root', `${this.dir}/exec`, '--pidfile', `${this.dir}/docker.pid`,
      '--iptables=false', '--ip6tables=false', `--bridge=${this.bridge}`,
    ], { stdio: ['ignore', log, log], detached: false });
    for (let i = 0; i < 240; i++) {
      if (await this.docker(['version', '--format', '{{.Server.Version}}']).then(() => true, () => false)) return;
      await sleep(250);
    }
    throw new Error(`dockerd on ${this.socket} did not answer in 60 s (see ${this.dir}/dockerd.log)`);
  }

  /** kill -9 of the engine (its containerd and shims are left as a crash leaves them). */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (!pid) return;
    const exited = new Promise((r) => this.child!.once('exit', r));
    process.kill(pid, 'SIGKILL');
    await exited;
    this.child = undefined;
    // The containerd it managed goes down with it, as in a crash of the whole engine (the
    // containers' shims stay): left running, it can block the next dockerd from starting its own.
    const pidFile = `${this.dir}/exec/containerd/containerd.pid`;
    const containerd = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : 0);
    if (containerd > 1 && (await this.leftovers()).includes(containerd)) {
      try { process.kill(containerd, 'SIGKILL'); } catch { /* gone */ }
      for (let i = 0; i < 40 && alive(containerd); i++) await sleep(250);
    }
    // Orphaned, it may linger as a zombie nobody reaps: the next dockerd would take it for a
    // running containerd and wait for it forever.
    fs.rmSync(pidFile, { force: true });
  }

  /** Pids of processes under our directory (containerd, shims) whose command line contains `what`. */
  private async leftovers(what = ''): Promise<number[]> {
    const out = await run('pgrep', ['-af', this.dir]).then((r) => r.stdout, () => '');
    return out.split('\n').filter((l) => l.includes(what) && !l.includes('pgrep')).map((l) => Number(l.split(' ')[0])).filter((p) => p && p !== process.pid);
  }

  docker(args: string[]): Promise<string> {
    return run('docker', ['-H', this.host, ...args], { maxBuffer: 64 * 1024 * 1024 }).then((r) => r.stdout);
  }

  /** Copies an image from the machine's engine into this one. */
  async loadImage(image: string): Promise<void> {
    execFileSync('sh', ['-c', `docker save ${image} | docker -H ${this.host} load`], { stdio: 'ignore' });
  }

  /** Stops the engine and removes its containers, its data and its bridge; safe to call more than once. */
  async destroy(): Promise<void> {
    if (this.child?.pid) {
      await this.docker(['ps', '-aq']).then((ids) => ids.trim() && this.docker(['rm', '-f', ...ids.trim().split(/\s+/)])).catch(() => {});
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (this.child?.exitCode === null) this.child.kill('SIGKILL');
    }
    // What a kill -9 left behind: containerd and shims under our own directory, by their pids.
    for (const pid of await this.leftovers()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await sleep(500);
    // Mounts (overlay layers, netns, shm) under our directory, deepest first.
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(this.dir)).sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]).catch(() => {});
    // Keep the engine's log with the run's other logs.
    try { fs.mkdirSync('test/cluster/results', { recursive: true }); fs.copyFileSync(`${this.dir}/dockerd.log`, 'test/cluster/results/dockerd-b.log'); } catch { /* none */ }
    fs.rmSync(this.dir, { recursive: true, force: true });
    await run('ip', ['link', 'del', this.bridge]).catch(() => {});
  }
}

/** Running (not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
