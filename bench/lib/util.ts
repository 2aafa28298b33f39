/** Small helpers for the benchmark: timing, percentiles, timeouts, bounded parallelism, output. */
import { performance } from 'node:perf_hooks';
import { waitFor as kitWaitFor } from '../../test/support/wait.js';

// Waits come from the kit the mocha suite and the fault suite share (test/support/wait.ts).
export { checkAborted, sleep } from '../../test/support/wait.js';

export const now = () => performance.now();

/** Quick mode (BENCH_QUICK=1): small N everywhere, for a smoke run. */
export const QUICK = ['1', 'true', 'yes'].includes((process.env.BENCH_QUICK ?? '').toLowerCase());

export function envInt(name: string, def: number, min = 1, max = 100_000): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${JSON.stringify(raw)}: expected an integer between ${min} and ${max}`);
  return n;
}

export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stdout.write(`[bench ${t}] ${msg}\n`);
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

export interface Latency {
  p50_ms: number;
  p99_ms: number;
  n: number;
}

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export function latency(samples: number[]): Latency {
  return { p50_ms: round(percentile(samples, 50)), p99_ms: round(percentile(samples, 99)), n: samples.length };
}

export class TimeoutError extends Error {}

/**
 * Runs `fn` with an AbortSignal that fires after `ms`; rejects with TimeoutError then, even if
 * `fn` ignores the signal, so a stuck scenario never hangs the run.
 */
export async function withTimeout<T>(what: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(`${what} timed out after ${Math.round(ms / 1000)} s`);
      ac.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
    if (!ac.signal.aborted) ac.abort(new Error('done'));
  }
}

/**
 * Polls `fn` until it returns a truthy value; throws after `timeoutMs` (default 30 s), when
 * `signal` aborts, or as soon as `fn` throws. Polls every 20 ms unless told otherwise: the
 * scenarios time what they wait for.
 */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, opts: { timeoutMs?: number; everyMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  return kitWaitFor(what, fn, { timeoutMs: 30_000, everyMs: 20, onError: 'throw', ...opts });
}

/** Maps over `items` with at most `limit` calls in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(lanes);
  return out;
}

export const fmtMs = (x: number) => (!Number.isFinite(x) ? '-' : x >= 100 ? `${Math.round(x)}` : x >= 10 ? x.toFixed(1) : x.toFixed(2));
