/**
 * The event pipeline: the one way the rest of Troupe hears about what the session store and the
 * hub committed. Writers hand it a commit (domain/ports.ts EventSink) and go on; listeners are
 * registered in one list at start-up (pipeline/listeners.ts) and come in two kinds:
 *
 * - inline: transports over a durable log (Redis fan-out to SSE/Socket.IO//ws, queueing a
 *   webhook). They run in the writing process right after commit, so live and durable messages
 *   keep their order; they write nothing of their own, and a client that missed one recovers
 *   from the log (Last-Event-ID, the updates cursor).
 * - queued: feature reactions (chat replies, task status, pair rounds), which write and may
 *   create, message or stop sessions. They never run inside the writer's call stack: a BullMQ
 *   job per session runs them on a worker, in event order, behind a per-session lock and a
 *   cursor in Postgres (sessions.reacted_index). A failing listener fails the job, which is
 *   logged and retried with backoff; the reaper re-queues sessions whose cursor lags. Delivery
 *   is at least once, so reactions are idempotent.
 */
import crypto from 'node:crypto';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { config } from '../config.js';
import { getSession, loadEvents } from '../db/session-store.js';
import * as cursor from '../db/repositories/session-cursor.js';
import type { DeliveredEvent } from '../domain/hub-events.js';
import type { EventSink } from '../domain/ports.js';
import type { EventRow, SessionCommit, SessionRow } from '../domain/sessions.js';
import { createRedis, key, redis } from '../lib/redis.js';
import { log } from '../log.js';

export const PIPELINE_QUEUE = 'session-reactions';

export interface SessionEventListener {
  name: string;
  mode: 'inline' | 'queued';
  /** Queued listeners: which sessions concern it (default: every feature session). */
  wants?(session: SessionRow): boolean;
  handle(session: SessionRow, events: EventRow[]): Promise<void>;
}

export interface AgentEventListener {
  name: string;
  handle(delivered: DeliveredEvent): Promise<void>;
}

/** Feature sessions are the ones a feature started; plain api sessions have no reactions. */
const isFeatureSession = (s: SessionRow) => s.trigger_type !== 'api';

/** Events handled per job; a longer backlog is continued by a follow-up job. */
const BATCH = 200;
const LOCK_MS = 60_000;

export class EventPipeline implements EventSink {
  private readonly inline: SessionEventListener[] = [];
  private readonly queued: SessionEventListener[] = [];
  private readonly agent: AgentEventListener[] = [];
  private queue?: Queue;

  /** `queueName`: a pipeline of its own (tests) must not share its jobs with the process's. */
  constructor(private readonly queueName = PIPELINE_QUEUE) {}

  onSessionEvents(listener: SessionEventListener): this {
    (listener.mode === 'inline' ? this.inline : this.queued).push(listener);
    return this;
  }

  onAgentEvent(listener: AgentEventListener): this {
    this.agent.push(listener);
    return this;
  }

  /** Names of the registered listeners, in order (for logs and docs). */
  describe(): string[] {
    return [...this.inline, ...this.queued].map((l) => `session:${l.mode}:${l.name}`).concat(this.agent.map((l) => `agent:inline:${l.name}`));
  }

  async sessionCommitted(commit: SessionCommit): Promise<void> {
    for (const l of this.inline) await runInline(l.name, () => l.handle(commit.session, commit.events));
    if (isFeatureSession(commit.session) && this.queued.some((l) => !l.wants || l.wants(commit.session))) {
      // Lost if Redis is away right now: the reaper's sweep (sweepLagging) queues it again.
      await this.enqueue(commit.session.id, commit.session.next_event_index).catch((err) =>
        log.warn({ err, session: commit.session.id }, 'could not queue session reactions; the sweep will retry'));
    }
  }

  async agentEvent(delivered: DeliveredEvent): Promise<void> {
    for (const l of this.agent) await runInline(l.name, () => l.handle(delivered));
  }

  private reactionQueue(): Queue {
    this.queue ??= new Queue(this.queueName, {
      connection: createRedis({ forBullmq: true, name: 'troupe-pipeline' }),
      prefix: `${config.redisPrefix}:bull`,
      defaultJobOptions: {
        attempts: 12,
        backoff: { type: 'exponential', delay: 250 },
        removeOnComplete: { age: 600, count: 2000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
      },
    });
    return this.queue;
  }

  /** One job per (session, write position): repeats of the same position are no-ops. */
  async enqueue(sessionId: string, upTo: number, suffix = ''): Promise<void> {
    await this.reactionQueue().add('react', { sessionId }, { jobId: `${sessionId}_${upTo}${suffix}` });
  }

  /** Runs the queued listeners on this process (workers call it). */
  startConsumer(opts: { concurrency?: number } = {}): { close(): Promise<void> } {
    const worker = new Worker(this.queueName, (job, token) => this.react(job, token), {
      connection: createRedis({ forBullmq: true, name: 'troupe-pipeline-worker' }),
      prefix: `${config.redisPrefix}:bull`,
      concurrency: opts.concurrency ?? 20,
    });
    worker.on('error', (err) => log.error({ err }, 'pipeline worker error'));
    worker.on('failed', (job, err) => log.error({ err, session: job?.data?.sessionId, attempt: job?.attemptsMade }, 'session listener failed; will retry'));
    return { close: () => worker.close() };
  }

  /** Re-queues sessions whose listeners fell behind (run by the reaper). */
  async sweepLagging(quietMs = 10_000): Promise<number> {
    const rows = await cursor.lagging(quietMs, 100);
    const minute = Math.floor(Date.now() / 60_000);
    for (const r of rows) await this.enqueue(r.id, r.next_event_index, `_sweep${minute}`);
    return rows.length;
  }

  private async react(job: Job, token?: string): Promise<void> {
    const sessionId = (job.data as { sessionId: string }).sessionId;
    const lockKey = key('pipeline-lock', sessionId);
    const mine = crypto.randomUUID();
    if (!(await redis().set(lockKey, mine, 'PX', LOCK_MS, 'NX'))) {
      // Another job is handling this session: come back shortly, so events stay in order.
      await job.moveToDelayed(Date.now() + 50, token);
      throw new DelayedError();
    }
    try {
      const session = await getSession(sessionId);
      if (!session) return;
      const events = await loadEvents(sessionId, { after: session.reacted_index, limit: BATCH });
      if (!events.length) return;
      for (const l of this.queued) {
        if (l.wants && !l.wants(session)) continue;
        try {
          await l.handle(session, events);
        } catch (err) {
          throw new Error(`listener ${l.name} failed on session ${sessionId}: ${(err as Error).message}`, { cause: err });
        }
      }
      const last = events[events.length - 1].event_index;
      await cursor.advance(sessionId, session.reacted_index, last);
      if (last < session.next_event_index - 1 || events.length === BATCH) await this.enqueue(sessionId, last + 1, '_more');
    } finally {
      // Released only if still ours (a job that outlived LOCK_MS must not free another's lock).
      await redis().eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, lockKey, mine);
    }
  }

  async close(): Promise<void> {
    await this.queue?.close();
    this.queue = undefined;
  }
}

/** Inline listeners get three quick tries; then the failure is logged and the durable log stands. */
async function runInline(name: string, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 3) {
        log.error({ err, listener: name }, 'inline listener failed; clients recover from the durable log');
        return;
      }
      await new Promise((r) => setTimeout(r, 50 * 4 ** (attempt - 1)));
    }
  }
}
