/**
 * deltas: S sessions stream text deltas (the scripted model, token_delay_ms chosen so that all
 * sessions together publish about BENCH_DELTA_RATE deltas/s) to SSE clients and Socket.IO
 * clients (each subscribed to one conversation room), spread evenly over the sessions.
 *
 * Latency reference: a bare ioredis subscriber in this process, subscribed to the same session
 * channels (`<prefix>:session:<id>`). For every delta, identified by (session, activation, seq),
 * ours = the client's receive time − the reference subscriber's receive time. So ours is what the
 * api adds after Redis has delivered the message (its subscriber, fan-out, HTTP/WebSocket framing,
 * the client's parsing); the worker's own publish hop is not in it (it is about one baseline hop).
 * All clients run in this process, so its event loop (busy with ~5,000 frames/s) is part of
 * every stamp; its own event-loop delay is reported.
 *
 * Baseline: a bare ioredis publish → subscribe (publisher and subscriber in this process,
 * timestamp in the payload) of as many messages at the rate achieved, over as many channels, run
 * after the measured phase with nothing else going on. ratio = ours p99 / baseline p99.
 * This process's own event-loop delay during the measured phase is reported too: a stall here
 * lands in ours (not in the baseline) and bounds how much of the tail is the measuring itself.
 * (Running the bare pub/sub alongside instead was tried: its extra load moved ours' p99 by more
 * than the measured effect, so it is not done.)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { openSse, socketClient, subscribeConversation, type SseClient } from '../lib/client.js';
import { PREFIX, REDIS_URL } from '../lib/stack.js';
import { checkAborted, envInt, fmtMs, latency, log, mapLimit, now, round, sleep, waitFor } from '../lib/util.js';
import type { Ctx, Scenario } from './types.js';

function words(n: number, tag: string): string {
  return Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
}

export const deltasScenario: Scenario = {
  name: 'deltas',
  goal: 2,
  timeoutMs: (quick) => (quick ? 180_000 : 360_000),
  async run(ctx: Ctx) {
    const { api, signal } = ctx;
    const sessions = envInt('BENCH_DELTA_SESSIONS', ctx.quick ? 10 : 50);
    const sseClients = envInt('BENCH_DELTA_SSE', ctx.quick ? 20 : 100, 0);
    const sioClients = envInt('BENCH_DELTA_SOCKETIO', ctx.quick ? 20 : 100, 0);
    const targetRate = envInt('BENCH_DELTA_RATE', 1000);
    const seconds = envInt('BENCH_DELTA_SECONDS', ctx.quick ? 4 : 10);
    const delay = Math.max(1, Math.round((sessions * 1000) / targetRate));
    const perSession = Math.max(10, Math.round((seconds * 1000) / delay));
    const warmWords = Math.max(10, Math.round(perSession / 5));
    log(`deltas: ${sessions} sessions × ${perSession} deltas at ${delay} ms (target ${targetRate}/s for ~${seconds} s), ${sseClients} SSE + ${sioClients} Socket.IO clients`);

    const agent = await api.agent('bench-deltas', {
      token_delay_ms: delay,
      turns: [{ text: words(warmWords, 'warm') }, { text: words(perSession, 'w') }],
    });
    // Idle, containerless sessions: the first message starts them all at about the same time.
    const ids = await mapLimit(Array.from({ length: sessions }), 10, async () => {
      const s = await api.session(agent.id);
      ctx.sessions.push(s.id);
      return s.id;
    });

    // reference subscriber
    const refAt = new Map<string, number>();
    let refFirst = Infinity;
    let refLast = 0;
    let recording = false;
    const ref = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
    const idleIn = new Map<string, number>(); // session → phase in which it last went idle
    let phase = 0;
    ref.on('message', (_channel: string, raw: string) => {
      const at = now();
      const m = JSON.parse(raw) as { type: string; session_id: string; activation: number; seq: number; event?: { event_type: string; payload: { status?: string } } };
      // Durable status events tell when every session is done, whoever watches it.
      if (m.type === 'event' && m.event?.event_type === 'status' && m.event.payload.status === 'idle') idleIn.set(m.session_id, phase);
      if (!recording || m.type !== 'text_delta') return;
      const k = `${m.session_id}|${m.activation}|${m.seq}`;
      if (!refAt.has(k)) refAt.set(k, at);
      refFirst = Math.min(refFirst, at);
      refLast = Math.max(refLast, at);
    });
    await ref.subscribe(...ids.map((id) => `${PREFIX}:session:${id}`));

    // clients
    const got = { sse: [] as Array<[string, number]>, sio: [] as Array<[string, number]> };
    const clientsOf = new Map<string, number>(ids.map((id) => [id, 0]));
    const streams: SseClient[] = [];
    const sockets: Socket[] = [];
    try {
      await mapLimit(Array.from({ length: sseClients }), 20, async (_, i) => {
        const sid = ids[i % sessions];
        const sse = openSse(api, sid);
        sse.keep = false;
        sse.onFrame = (f) => {
          if (recording && f.event === 'text_delta') got.sse.push([`${sid}|${f.data.activation}|${f.data.seq}`, f.at]);
        };
        streams.push(sse);
        await sse.ready;
        clientsOf.set(sid, clientsOf.get(sid)! + 1);
      });
      await mapLimit(Array.from({ length: sioClients }), 20, async (_, i) => {
        const sid = ids[i % sessions];
        const socket = await socketClient(api);
        sockets.push(socket);
        socket.on('agent:conversation:delta', (d: { type: string; conversation_id: string; activation: number; seq: number }) => {
          const at = now();
          if (recording && d.type === 'text_delta') got.sio.push([`${d.conversation_id}|${d.activation}|${d.seq}`, at]);
        });
        await subscribeConversation(socket, sid);
        clientsOf.set(sid, clientsOf.get(sid)! + 1);
      });
      log(`deltas: ${streams.length} SSE and ${sockets.length} Socket.IO clients attached`);

      const runPhase = async (label: string, record: boolean) => {
        phase++;
        const p = phase;
        recording = record;
        await mapLimit(ids, 10, (id) => api.message(id, label));
        const t0 = now();
        await waitFor(`all ${sessions} sessions to finish streaming (${label})`, () => {
          ctx.stack.assertAlive();
          return ids.every((id) => idleIn.get(id) === p);
        }, { timeoutMs: 120_000 + seconds * 3000, everyMs: 100, signal }).catch(async (err: Error) => {
          // Say which sessions are stuck and where, so a failure can be looked into.
          const stuck = ids.filter((id) => idleIn.get(id) !== p);
          const views = await Promise.all(stuck.slice(0, 3).map((id) => api.conversation(id).catch(() => null)));
          const where = views.map((v, i) => `${stuck[i]}: ${v ? `${v.status}${v.error ? ` (${v.error})` : ''}` : '?'}`).join('; ');
          throw new Error(`${err.message}: ${stuck.length} not idle, e.g. ${where}`);
        });
        // Let the last frames drain.
        await sleep(300);
        recording = false;
        return now() - t0;
      };
      await runPhase('warm-up', false);
      log('deltas: warm-up done (containers up, clients attached); measuring');
      // How late this process's own event loop ran while receiving (it stamps every arrival).
      const loopDelay = monitorEventLoopDelay({ resolution: 1 });
      loopDelay.enable();
      const took = await runPhase('measure', true);
      loopDelay.disable();
      const loopP99 = round(loopDelay.percentile(99) / 1e6, 2);
      checkAborted(signal);

      // match deliveries to the reference
      const lat = (list: Array<[string, number]>) => list.flatMap(([k, at]) => {
        const r = refAt.get(k);
        return r === undefined ? [] : [at - r];
      });
      const sseLat = lat(got.sse);
      const sioLat = lat(got.sio);
      const all = [...sseLat, ...sioLat];
      const published = refAt.size;
      const rate = published / Math.max(0.001, (refLast - refFirst) / 1000);
      let expected = 0;
      for (const k of refAt.keys()) expected += clientsOf.get(k.slice(0, k.indexOf('|'))) ?? 0;
      const lost = expected - all.length;
      log(`deltas: ${published} deltas in ${(took / 1000).toFixed(1)} s (${Math.round(rate)}/s achieved), ${all.length} deliveries, ${lost} missing`);

      // the baseline proper: the same bare pub/sub alone
      const base = await barePubSub(published, rate, sessions, signal);
      const o = latency(all);
      const s = latency(sseLat);
      const io = latency(sioLat);
      const b = latency(base);
      return {
        name: 'deltas', goal: 2,
        ours: {
          p50_ms: o.p50_ms, p99_ms: o.p99_ms, n: o.n,
          sse_p50_ms: s.p50_ms, sse_p99_ms: s.p99_ms, socketio_p50_ms: io.p50_ms, socketio_p99_ms: io.p99_ms,
          rate_per_s: Math.round(rate), sessions, sse_clients: streams.length, socketio_clients: sockets.length, missing_deliveries: lost,
          client_loop_delay_p99_ms: loopP99,
        },
        baseline: { p50_ms: b.p50_ms, p99_ms: b.p99_ms, n: b.n, rate_per_s: Math.round(rate) },
        ratio: round(o.p99_ms / b.p99_ms, 3),
        show: {
          ours: `p50 ${fmtMs(o.p50_ms)} / p99 ${fmtMs(o.p99_ms)} ms @ ${Math.round(rate)}/s`,
          baseline: `p50 ${fmtMs(b.p50_ms)} / p99 ${fmtMs(b.p99_ms)} ms`,
          note: `${sessions} sessions → ${streams.length} SSE (p99 ${fmtMs(s.p99_ms)}) + ${sockets.length} Socket.IO (p99 ${fmtMs(io.p99_ms)}) clients; ratio is p99/p99; the clients' process event-loop delay p99 ${fmtMs(loopP99)} ms; ${lost} deliveries missing`,
        },
      };
    } finally {
      for (const s of streams) s.close();
      for (const s of sockets) s.close();
      ref.disconnect();
    }
  },
};

/** `count` messages published at `rate`/s over `channels` channels; returns publish → receive latencies. */
async function barePubSub(count: number, rate: number, channels: number, signal: AbortSignal): Promise<number[]> {
  const pub = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const out: number[] = [];
  try {
    const names = Array.from({ length: channels }, (_, i) => `${PREFIX}:bench-baseline:${i}`);
    await sub.subscribe(...names);
    sub.on('message', (_c: string, raw: string) => {
      const at = now();
      out.push(at - (JSON.parse(raw) as { t: number }).t);
    });
    const t0 = now();
    let sent = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (signal.aborted) {
          clearInterval(timer);
          return reject(new Error('aborted'));
        }
        const due = Math.min(count, Math.floor(((now() - t0) / 1000) * rate) + 1);
        for (; sent < due; sent++) {
          // Shaped like a delta message, with the send time in it.
          const msg = JSON.stringify({ type: 'text_delta', session_id: '00000000-0000-0000-0000-000000000000', project_id: '00000000-0000-0000-0000-000000000000', turn: 1, delta: `w${sent} `, activation: 1, seq: sent, t: now() });
          void pub.publish(names[sent % channels], msg).catch(() => {});
        }
        if (sent >= count) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    await waitFor('the baseline subscriber', () => out.length >= count, { timeoutMs: 10_000, signal }).catch(() => {});
    return out;
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}
