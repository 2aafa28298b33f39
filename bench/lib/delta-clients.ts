/**
 * One client thread of the deltas scenario (a worker_thread; see bench/scenarios/deltas.ts).
 *
 * It owns a share of the sessions: every SSE and Socket.IO client of those sessions, and its own
 * reference subscriber, a bare ioredis connection subscribed to the same session channels. Every
 * delta is stamped on this thread's clock when the reference receives it and when each client
 * receives it, so `client − reference` never mixes clocks or threads, and a stall of another
 * thread (GC, parsing other clients' frames) is not in this thread's figures.
 *
 * SSE is read with a plain node:http request, stamped when the chunk arrives (before parsing), as
 * the fetch-based reader in client.ts does; it is a much lighter reader than fetch + web streams.
 * Socket.IO uses socket.io-client as a dashboard would, stamped when the event is emitted.
 *
 * Optionally (probeEveryMs > 0) the thread also times a bare pub/sub hop of its own while
 * recording: a message shaped like a delta, published every probeEveryMs on a channel of its own
 * and received by a subscriber in this thread, like the scenario's baseline but under the load
 * of the measured phase.
 *
 * Commands (over the port, each answered {type: 'reply', id, value | error}):
 *   record {on}            start (clearing what was kept) or stop keeping deltas
 *   results {steadyFrom}   latencies of what was kept, and counts (steadyFrom: timeOrigin-based ms)
 *   close                  close every client, the reference and the probe
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { Api, socketClient, subscribeConversation } from './client.js';
import { mapLimit } from './util.js';

export interface ClientThreadData {
  url: string;
  token: string;
  redisUrl: string;
  prefix: string;
  /** Sessions this thread owns, with how many clients of each kind watch each one. */
  sessions: Array<{ id: string; sse: number; sio: number }>;
  /** Period of the bare pub/sub probe while recording; 0: no probe. */
  probeEveryMs: number;
}

export interface ClientThreadResult {
  /** client receive − reference receive, ms, per delivery. */
  sse: number[];
  sio: number[];
  /** The same (both kinds), for deltas the reference received at or after `steadyFrom`. */
  steady: number[];
  /** The probe's publish → receive, ms. */
  probe: number[];
  /** Distinct deltas the reference received, and deliveries expected for them (clients × deltas). */
  published: number;
  expected: number;
  /** First and last reference receive, as performance.timeOrigin + now() (comparable across threads). */
  refFirst: number;
  refLast: number;
  /** This thread's event-loop delay while recording, ms. */
  loopP99: number;
}

const data = workerData as ClientThreadData;
const port = parentPort!;
const now = () => performance.now();

/** A minimal SSE reader (one-line `data:` JSON, as the api sends); calls onFrame(event, data, at). */
function openSse(url: string, token: string, onFrame: (event: string, json: string, at: number) => void): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`SSE ${url} → ${res.statusCode}`));
      }
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        const at = now();
        buf += chunk;
        let cut: number;
        let from = 0;
        while ((cut = buf.indexOf('\n\n', from)) >= 0) {
          const raw = buf.slice(from, cut);
          from = cut + 2;
          let event = 'message';
          let json = '';
          for (const line of raw.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) json += line.slice(6);
          }
          if (json) onFrame(event, json, at);
        }
        if (from) buf = buf.slice(from);
      });
      res.on('error', () => {});
      resolve(req);
    });
    req.setNoDelay(true);
    req.on('error', reject);
  });
}

async function main() {
  const refAt = new Map<string, number>();
  const sseGot: Array<[string, number]> = [];
  const sioGot: Array<[string, number]> = [];
  const probeLat: number[] = [];
  let recording = false;
  let refFirst = Infinity;
  let refLast = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const clientsOf = new Map(data.sessions.map((s) => [s.id, s.sse + s.sio]));
  const redisOpts = { maxRetriesPerRequest: 3 };

  const ref = new Redis(data.redisUrl, redisOpts);
  ref.on('message', (_channel: string, raw: string) => {
    const at = now();
    if (!recording) return;
    const m = JSON.parse(raw) as { type: string; session_id: string; activation: number; seq: number };
    if (m.type !== 'text_delta') return;
    const k = `${m.session_id}|${m.activation}|${m.seq}`;
    if (refAt.has(k)) return;
    refAt.set(k, at);
    const abs = performance.timeOrigin + at;
    if (abs < refFirst) refFirst = abs;
    if (abs > refLast) refLast = abs;
  });
  if (data.sessions.length) await ref.subscribe(...data.sessions.map((s) => `${data.prefix}:session:${s.id}`));

  let probe: { pub: Redis; sub: Redis; timer: NodeJS.Timeout } | undefined;
  if (data.probeEveryMs > 0) {
    const channel = `${data.prefix}:bench-probe:${threadId}`;
    const pub = new Redis(data.redisUrl, redisOpts);
    const sub = new Redis(data.redisUrl, redisOpts);
    await sub.subscribe(channel);
    sub.on('message', (_c: string, raw: string) => {
      const at = now();
      if (recording) probeLat.push(at - (JSON.parse(raw) as { t: number }).t);
    });
    let seq = 0;
    const timer = setInterval(() => {
      if (!recording) return;
      seq++;
      const msg = JSON.stringify({ type: 'text_delta', session_id: '00000000-0000-0000-0000-000000000000', project_id: '00000000-0000-0000-0000-000000000000', turn: 1, delta: `p${seq} `, activation: 1, seq, t: now() });
      void pub.publish(channel, msg).catch(() => {});
    }, data.probeEveryMs);
    probe = { pub, sub, timer };
  }

  const requests: http.ClientRequest[] = [];
  const sockets: Socket[] = [];
  const api = new Api(data.url, data.token);
  const sseSlots = data.sessions.flatMap((s) => Array.from({ length: s.sse }, () => s.id));
  const sioSlots = data.sessions.flatMap((s) => Array.from({ length: s.sio }, () => s.id));
  await mapLimit(sseSlots, 10, async (sid) => {
    requests.push(await openSse(`${data.url}/api/v1/sessions/${sid}/stream`, data.token, (event, json, at) => {
      if (!recording || event !== 'text_delta') return;
      const d = JSON.parse(json) as { activation: number; seq: number };
      sseGot.push([`${sid}|${d.activation}|${d.seq}`, at]);
    }));
  });
  await mapLimit(sioSlots, 10, async (sid) => {
    const socket = await socketClient(api);
    sockets.push(socket);
    socket.on('agent:conversation:delta', (d: { type: string; conversation_id: string; activation: number; seq: number }) => {
      const at = now();
      if (recording && d.type === 'text_delta') sioGot.push([`${d.conversation_id}|${d.activation}|${d.seq}`, at]);
    });
    await subscribeConversation(socket, sid);
  });

  const commands: Record<string, (arg: any) => unknown> = {
    record({ on }: { on: boolean }) {
      if (on) {
        refAt.clear();
        sseGot.length = 0;
        sioGot.length = 0;
        probeLat.length = 0;
        refFirst = Infinity;
        refLast = 0;
        loop.reset();
        loop.enable();
      } else loop.disable();
      recording = on;
      return true;
    },
    results({ steadyFrom }: { steadyFrom: number }): ClientThreadResult {
      const from = steadyFrom - performance.timeOrigin;
      const steady: number[] = [];
      const lat = (list: Array<[string, number]>) => {
        const out: number[] = [];
        for (const [k, at] of list) {
          const r = refAt.get(k);
          if (r === undefined) continue;
          out.push(at - r);
          if (r >= from) steady.push(at - r);
        }
        return out;
      };
      let expected = 0;
      for (const k of refAt.keys()) expected += clientsOf.get(k.slice(0, k.indexOf('|'))) ?? 0;
      return {
        sse: lat(sseGot), sio: lat(sioGot), steady, probe: [...probeLat], published: refAt.size, expected, refFirst, refLast,
        loopP99: loop.count ? loop.percentile(99) / 1e6 : NaN,
      };
    },
    close() {
      for (const r of requests) r.destroy();
      for (const s of sockets) s.close();
      ref.disconnect();
      if (probe) {
        clearInterval(probe.timer);
        probe.pub.disconnect();
        probe.sub.disconnect();
      }
      return true;
    },
  };
  port.on('message', ({ id, cmd, arg }: { id: number; cmd: string; arg?: unknown }) => {
    try {
      port.postMessage({ type: 'reply', id, value: commands[cmd](arg) });
    } catch (err) {
      port.postMessage({ type: 'reply', id, error: (err as Error).message });
    }
  });
  port.postMessage({ type: 'ready', sse: requests.length, sio: sockets.length });
}

main().catch((err) => port.postMessage({ type: 'error', message: String((err as Error)?.stack ?? err) }));
