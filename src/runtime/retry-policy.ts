/**
 * How the two BullMQ queues retry a failed job, in one place so the schedules can be read (and
 * checked by the unit tier) without Redis. BullMQ's exponential backoff waits delay × 2^(n−1)
 * before retry n.
 */
export interface RetryPolicy {
  /** Tries in all, the first one included. */
  attempts: number;
  backoff: { type: 'exponential'; delay: number };
}

/**
 * Session activations. Model and tool failures end the job normally (they are recorded on the
 * session); a job only fails when the infrastructure did (Postgres or Redis away), and then it is
 * retried: 7 retries over about a minute (0.5 s, 1 s, ... 32 s), and the activation resumes
 * from the event log.
 */
export const SESSION_JOB_RETRY: RetryPolicy = { attempts: 8, backoff: { type: 'exponential', delay: 500 } };

/** Webhook deliveries: `TROUPE_WEBHOOK_ATTEMPTS` tries, the first retry after `TROUPE_WEBHOOK_BACKOFF_MS`, doubling. */
export const webhookRetry = (attempts: number, firstRetryMs: number): RetryPolicy => ({ attempts, backoff: { type: 'exponential', delay: firstRetryMs } });

/** The wait before each retry (attempts − 1 of them), in ms, as BullMQ computes it. */
export function retryDelays(p: RetryPolicy): number[] {
  return Array.from({ length: Math.max(0, p.attempts - 1) }, (_, i) => Math.round(2 ** i * p.backoff.delay));
}
