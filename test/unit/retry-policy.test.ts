import { expect } from 'chai';
import { Backoffs } from 'bullmq';
import { loadConfig } from '../../src/config.js';
import { retryDelays, SESSION_JOB_RETRY, webhookRetry, type RetryPolicy } from '../../src/runtime/retry-policy.js';

/** What BullMQ itself waits before retry n (after n failed attempts). */
const bullmqDelays = (p: RetryPolicy) =>
  Array.from({ length: p.attempts - 1 }, (_, i) => Backoffs.calculate(Backoffs.normalize(p.backoff)!, i + 1, new Error('x'), {} as never) as number);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('retry backoff of the queues', () => {
  it('retryDelays is what BullMQ computes', () => {
    for (const p of [SESSION_JOB_RETRY, webhookRetry(8, 2000), webhookRetry(3, 100), webhookRetry(1, 500)]) {
      expect(retryDelays(p)).to.deep.equal(bullmqDelays(p));
    }
  });

  it('a session job outlives a minute of Postgres or Redis being away', () => {
    const d = retryDelays(SESSION_JOB_RETRY);
    expect(d).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000, 32000]);
    expect(sum(d)).to.be.greaterThan(60_000);
  });

  it('webhooks by default: 8 tries, the first retry after 2 s, doubling, over about four minutes', () => {
    const cfg = loadConfig({});
    const d = retryDelays(webhookRetry(cfg.webhookAttempts, cfg.webhookBackoffMs));
    expect(d).to.deep.equal([2000, 4000, 8000, 16000, 32000, 64000, 128000]);
    expect(sum(d)).to.equal(254_000);
  });

  it('one attempt means no retry; the configured first delay is the first retry', () => {
    expect(retryDelays(webhookRetry(1, 2000))).to.deep.equal([]);
    const cfg = loadConfig({ TROUPE_WEBHOOK_ATTEMPTS: '3', TROUPE_WEBHOOK_BACKOFF_MS: '100' });
    expect(retryDelays(webhookRetry(cfg.webhookAttempts, cfg.webhookBackoffMs))).to.deep.equal([100, 200]);
  });
});
