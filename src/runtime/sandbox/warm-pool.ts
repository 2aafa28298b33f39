/**
 * A pool of pre-created, started, then paused containers per sandbox shape, so a new session's
 * sandbox costs a rename + unpause (~15 ms) instead of a create + start (~150 ms).
 *
 * - A shape is (image, memory, cpus, pids) with no env, no network and no explicit user: labels,
 *   env, the network mode and the user are fixed at `docker create`, so only sandboxes that need nothing of those can
 *   come from the pool. Everything else takes the normal create path.
 * - Pooled containers are named `troupe-pool-<random>` and carry `troupe.pool=<shape>`. Claiming
 *   one renames it to the sandbox's name (`troupe-sbx-<sandbox id>`), which is how the driver and
 *   the reaper find a sandbox's container, whatever its labels.
 * - The pool belongs to one process (the worker's driver): claims are exclusive without any
 *   coordination. A shape is kept warm while it is in demand (the default image always, others for
 *   a while after they were last asked for). Containers older than `maxAgeMs` are replaced, so a
 *   crashed owner's leftovers are recognisable by age; the reaper removes those (see reaper.ts).
 * - Before pausing, the pool lets the driver prepare the container (start its executor), so the
 *   first tool call of a pooled sandbox is fast too.
 */
import crypto from 'node:crypto';
import type Docker from 'dockerode';
import { POOL_NAME_PREFIX, type ContainerInfo, type SandboxSpec } from './driver.js';

export const POOL_LABEL = 'troupe.pool';

import type { WarmPoolOptions } from './driver.js';

export type { WarmPoolOptions };

interface Pooled {
  id: string;
  createdAt: number;
}

interface Shape {
  spec: SandboxSpec;
  ready: Pooled[];
  filling: Promise<void> | null;
  lastWanted: number;
  permanent: boolean;
}

export interface PoolHooks {
  /** Create options for a container of this spec with this name and these extra labels. */
  createOptions(spec: SandboxSpec, name: string, labels: Record<string, string>): Promise<Docker.ContainerCreateOptions>;
  /** Called on the running container before it is paused into the pool (e.g. start the executor). */
  prepare?(containerId: string): Promise<void>;
  /** Called when a pooled container is thrown away (release per-container state). */
  forget?(containerId: string): void;
}

type DockerError = Error & { statusCode?: number };

export class WarmPool {
  private readonly shapes = new Map<string, Shape>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly docker: Docker,
    private readonly hooks: PoolHooks,
    private readonly opts: WarmPoolOptions,
    private readonly onError: (err: unknown, what: string) => void = () => {},
  ) {
    this.timer = setInterval(() => this.recycle(), Math.max(1000, Math.floor(opts.maxAgeMs / 4)));
    this.timer.unref();
  }

  /** The pool key of a spec, or null when such a sandbox cannot come from the pool. */
  static shapeOf(spec: SandboxSpec): string | null {
    if (spec.network === 'bridge' || spec.user !== undefined || Object.keys(spec.env ?? {}).length || Object.keys(spec.labels ?? {}).length) return null;
    return [spec.image, spec.memoryMb ?? 512, spec.cpus ?? 1, spec.pidsLimit ?? 256].join('|');
  }

  /** Keeps this shape warm (forever when `permanent`, else while it is asked for). */
  warm(spec: SandboxSpec, permanent = false): void {
    const key = WarmPool.shapeOf(spec);
    if (!key || this.closed || this.opts.size <= 0) return;
    let shape = this.shapes.get(key);
    if (!shape) {
      shape = { spec: { ...spec, sandboxId: 'pool', projectId: 'pool', sessionId: undefined }, ready: [], filling: null, lastWanted: Date.now(), permanent };
      this.shapes.set(key, shape);
    }
    shape.permanent ||= permanent;
    shape.lastWanted = Date.now();
    void this.fill(key);
  }

  /**
   * Takes a pooled container for `spec`, renamed to `name` and running; null when none is ready
   * (the caller creates one as usual). Registers demand for the shape either way.
   */
  async claim(spec: SandboxSpec, name: string): Promise<ContainerInfo | null> {
    const key = WarmPool.shapeOf(spec);
    if (!key || this.closed || this.opts.size <= 0) return null;
    this.warm(spec);
    const shape = this.shapes.get(key)!;
    for (let entry = shape.ready.shift(); entry; entry = shape.ready.shift()) {
      void this.fill(key);
      const c = this.docker.getContainer(entry.id);
      try {
        await c.rename({ name });
      } catch (err) {
        if ((err as DockerError).statusCode === 409) {
          // The sandbox got its container some other way meanwhile: keep ours for the next one.
          if (this.closed) this.discard(entry.id);
          else shape.ready.unshift(entry);
          return null;
        }
        this.discard(entry.id); // gone (404) or broken: try the next
        continue;
      }
      if (await this.unpause(c)) return { id: entry.id, name, state: 'running', labels: { [POOL_LABEL]: key } };
      // Dead (killed, or the engine restarted) or broken: it must not keep the sandbox's name,
      // or the caller's create would find it and adopt a container being removed.
      await this.removeContainer(entry.id);
    }
    return null;
  }

  /** Unpauses a claimed container; true when Docker then reports it running. */
  private async unpause(c: Docker.Container): Promise<boolean> {
    try {
      await c.unpause();
      return true;
    } catch (err) {
      // "is not paused" is also what a stopped container answers: only a running one will do.
      if (/not paused/i.test((err as Error).message)) {
        const state = await c.inspect().then((i) => i.State, () => null);
        if (state?.Running && !state.Paused) return true;
      }
      this.onError(err, 'unpause a pooled container');
      return false;
    }
  }

  /**
   * After the engine came back (it restarted, so pooled containers stopped): forgets those that
   * are no longer paused and tops every shape up again.
   */
  async refresh(): Promise<void> {
    for (const [key, shape] of this.shapes) {
      const states = await Promise.all(shape.ready.map((p) => this.docker.getContainer(p.id).inspect().then((i) => i.State, () => null)));
      const dead = new Set(shape.ready.filter((_, i) => !states[i]?.Paused).map((p) => p.id));
      shape.ready = shape.ready.filter((p) => !dead.has(p.id));
      for (const id of dead) this.discard(id);
      void this.fill(key);
    }
  }

  /** Stops refilling and removes every container still in the pool. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    // A container being created right now is removed by fill() when it sees the pool closed.
    await Promise.all([...this.shapes.values()].map((s) => s.filling));
    const all = [...this.shapes.values()].flatMap((s) => s.ready.splice(0));
    await Promise.all(all.map((p) => this.removeContainer(p.id)));
  }

  /** Tops the shape up, one container at a time (at most one fill per shape runs). */
  private fill(key: string): Promise<void> {
    const shape = this.shapes.get(key);
    if (!shape) return Promise.resolve();
    shape.filling ??= (async () => {
      await null; // so `filling` is assigned before the finally below can clear it
      try {
        while (!this.closed && shape.ready.length < this.opts.size && this.shapes.get(key) === shape) {
          const made = await this.createPaused(shape.spec, key);
          // The pool closed, or dropped this shape, while it was made: nobody would ever claim it.
          if (this.closed || this.shapes.get(key) !== shape) await this.removeContainer(made.id);
          else shape.ready.push(made);
        }
      } catch (err) {
        // E.g. the image is missing: the normal path will say so to the session that needs it.
        // A shape that cannot be made is not kept warm (the next claim asks again).
        if (!this.closed) this.onError(err, 'fill the warm pool');
        if (!shape.permanent && this.shapes.get(key) === shape) this.shapes.delete(key);
      } finally {
        shape.filling = null;
      }
    })();
    return shape.filling;
  }

  private async createPaused(spec: SandboxSpec, key: string): Promise<Pooled> {
    const name = POOL_NAME_PREFIX + crypto.randomBytes(8).toString('hex');
    const container = await this.docker.createContainer(await this.hooks.createOptions(spec, name, { [POOL_LABEL]: key }));
    try {
      await container.start();
      await this.hooks.prepare?.(container.id).catch(() => {}); // no executor: the exec path works
      await container.pause();
    } catch (err) {
      await this.removeContainer(container.id);
      throw err;
    }
    return { id: container.id, createdAt: Date.now() };
  }

  /** Replaces containers past their age and drops shapes nobody asked for lately. */
  private recycle(): void {
    const now = Date.now();
    for (const [key, shape] of this.shapes) {
      const stale = !shape.permanent && now - shape.lastWanted > (this.opts.demandTtlMs ?? 30 * 60_000);
      const old = shape.ready.filter((p) => stale || now - p.createdAt > this.opts.maxAgeMs);
      shape.ready = shape.ready.filter((p) => !old.includes(p));
      for (const p of old) this.discard(p.id);
      if (stale) this.shapes.delete(key);
      else void this.fill(key);
    }
  }

  private discard(id: string): void {
    void this.removeContainer(id);
  }

  private async removeContainer(id: string): Promise<void> {
    this.hooks.forget?.(id);
    const c = this.docker.getContainer(id);
    await c.unpause().catch(() => {});
    await c.remove({ force: true }).catch(() => {});
  }
}
