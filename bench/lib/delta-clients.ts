/**
 * One client thread of the deltas scenario (a worker_thread; see bench/scenarios/deltas.ts).
 *
 * It owns a share of the sessions: every SSE and Socket.IO client of those sessions, and its own
 * reference subscriber, a bare ioredis connection subscribed to the same session channels. Every
 * live message carries `at`, the worker's wall clock when it published it (µs precision). For
 * each delta this thread records, on its own clock mapped to the wall clock:
 *   bare  = reference receive − publish: a bare ioredis publish → subscribe of that very message,
 *   ours  = client receive − publish: the whole path through the api to a client,
 *   added = client receive − reference receive: what the api adds after Redis delivered it,
 * so the baseline and ours are the same messages under the same load, measured by the same event
 * loop, and a stall of another thread (GC, parsing other clients' frames) is in neither.
 *
 * SSE is read with a plain node:http request, stamped when the chunk arrives (before parsing), as
 * the fetch-based reader in client.ts does; it is a much lighter reader than fetch + web streams.
 * Socket.IO uses socket.io-client as a dashboard would, stamped when the event is emitted.
 *
 * Commands (over the port, each answered {type: 'reply', id, value | error}):
 *   record {on}            start (clearing what was kept) or stop keeping deltas
 *   results {steadyFrom}   latencies of what was kept, and counts (steadyFrom: timeOrigin-based ms)
 *   close                  close every client and the reference
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
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
}

export interface ClientThreadResult {
  /** client receive − publish, ms, per delivery. */
  sse: number[];
  sio: number[];
  /** client receive − reference receive, ms, per delivery (both kinds). */
  added: number[];
  /** reference receive − publish, ms, per distinct delta: the bare pub/sub hop of the same messages. */
  bare: number[];
  /** ours and bare for the deltas published at or after `steadyFrom`. */
  steady: number[];
  steadyBare: number[];
  /** Distinct deltas the reference received, and deliveries expected for them (clients × deltas). */
  published: number;
  expected: number;
  /** First and last publish, as performance.timeOrigin + now() (comparable across threads). */
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
  /** Per delta key: [publish, reference receive], on this thread's performance.now() clock. */
  const refAt = new Map<string, [number, number]>();
  const sseGot: Array<[string, number]> = [];
  const sioGot: Array<[string, number]> = [];
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
    const m = JSON.parse(raw) as { type: string; session_id: string; activation: number; seq: number; at?: number };
    if (m.type !== 'text_delta') return;
    if (typeof m.at !== 'number') throw new Error('a live message without `at` (publish time): is the worker older than this benchmark?');
    const k = `${m.session_id}|${m.activation}|${m.seq}`;
    if (refAt.has(k)) return;
    const published = m.at - performance.timeOrigin;
    refAt.set(k, [published, at]);
    if (m.at < refFirst) refFirst = m.at;
    if (m.at > refLast) refLast = m.at;
  });
  if (data.sessions.length) await ref.subscribe(...data.sessions.map((s) => `${data.prefix}:session:${s.id}`));

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
      const added: number[] = [];
      const lat = (list: Array<[string, number]>) => {
        const out: number[] = [];
        for (const [k, at] of list) {
          const r = refAt.get(k);
          if (r === undefined) continue;
          out.push(at - r[0]);
          added.push(at - r[1]);
          if (r[0] >= from) steady.push(at - r[0]);
        }
        return out;
      };
      let expected = 0;
      const bare: number[] = [];
      const steadyBare: number[] = [];
      for (const [k, [pub, got]] of refAt) {
        expected += clientsOf.get(k.slice(0, k.indexOf('|'))) ?? 0;
        bare.push(got - pub);
        if (pub >= from) steadyBare.push(got - pub);
      }
      return {
        sse: lat(sseGot), sio: lat(sioGot), added, bare, steady, steadyBare, published: refAt.size, expected, refFirst, refLast,
        loopP99: loop.count ? loop.percentile(99) / 1e6 : NaN,
      };
    },
    close() {
      for (const r of requests) r.destroy();
      for (const s of sockets) s.close();
      ref.disconnect();
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
