/**
 * Waiting, for the mocha suite, the fault suite and the benchmark alike: wait for the thing you
 * expect (a row, a frame, a process), never for a fixed time.
 */
import { performance } from 'node:perf_hooks';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface WaitOptions {
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** Poll period (default 100 ms). */
  everyMs?: number;
  /** Stop waiting when it aborts (its reason is thrown). */
  signal?: AbortSignal;
  /**
   * What a throwing probe means: 'retry' (default: a service may be briefly away; the last error
   * is reported at the timeout) or 'throw' (fail at once, e.g. a probe that checks a process is alive).
   */
  onError?: 'retry' | 'throw';
}

export function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/**
 * Polls `probe` until it returns a truthy value, and returns that value. The third argument is
 * the timeout in ms or the options; `everyMs` may follow a timeout for the short form.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: number | WaitOptions = {},
  everyMs?: number,
): Promise<T> {
  const o: WaitOptions = typeof opts === 'number' ? { timeoutMs: opts, everyMs } : opts;
  const deadline = performance.now() + (o.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    checkAborted(o.signal);
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      if (o.onError === 'throw') throw err;
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(o.everyMs ?? 100);
  }
}
