/** worker_threads running TypeScript under tsx (a plain `new Worker(file.ts)` does not get tsx's loader on Node 20). */
import { Worker } from 'node:worker_threads';

export function tsWorker(file: URL, workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file.href)}); })`
    + `.catch((err) => { require('node:worker_threads').parentPort.postMessage({ type: 'error', message: String(err?.stack ?? err) }); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** Request/reply over a worker's message port: every request carries an id, the reply echoes it. */
export class WorkerRpc {
  private next = 1;
  private readonly waiting = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  private failed: Error | null = null;
  private onDead!: (err: Error) => void;
  /** Rejects when the thread fails or exits (for racing a wait against it). */
  readonly dead = new Promise<never>((_, reject) => (this.onDead = reject));

  constructor(readonly worker: Worker, onOther: (msg: any) => void = () => {}) {
    this.dead.catch(() => {});
    worker.on('message', (msg: any) => {
      if (msg?.type === 'reply' && this.waiting.has(msg.id)) {
        const w = this.waiting.get(msg.id)!;
        this.waiting.delete(msg.id);
        if (msg.error) w.reject(new Error(msg.error));
        else w.resolve(msg.value);
      } else if (msg?.type === 'error') {
        this.fail(new Error(`client thread: ${msg.message}`));
      } else onOther(msg);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`client thread exited (${code})`)));
  }

  private fail(err: Error) {
    this.failed ??= err;
    this.onDead(this.failed);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  call<T = unknown>(cmd: string, arg?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`client thread: ${cmd} timed out`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => { clearTimeout(t); resolve(v); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      this.worker.postMessage({ id, cmd, arg });
    });
  }
}
