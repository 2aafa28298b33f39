/**
 * `npm run test:cluster` (issue 13): Troupe past one machine, on this one machine. Two worker
 * hosts, each owning a Docker engine (the machine's engine, never restarted here, and an engine
 * of this test's own, with its own socket, data, exec root and bridge), and two api processes,
 * all real processes on one Postgres database and one Redis prefix of their own. It shows:
 *   spread     sessions placed over both hosts, as each engine's own `docker ps` shows;
 *   control    pause, resume and stop through either api on containers of either host;
 *   sse        an SSE client on api A following a session that runs on host B;
 *   kill -9    a host killed with 20 sessions in flight: all recovered on the other host, and
 *              the host, restarted, removes its stale containers; two of its sessions paused
 *              before the kill stay paused, and once resumed get a fresh sandbox on the other
 *              host (with `sandbox_replaced {files_lost: true}`) and run to the end;
 *   dockerd    one host's engine killed (-9) mid-load: its sessions recovered on the other host,
 *              and once the engine is back, the host removes its stale containers;
 *   drain      POST /api/v1/admin/hosts/:id/drain: sandboxes moved with their files (checked
 *              with `docker exec` on the target engine), then the host exits; then the drained
 *              host is started again and SIGTERM to the other host's worker drains it back;
 * and prints a table: scenario, sessions affected, lost, duplicated, stuck, recovery p50/p99.
 * The extra engine, its data and its bridge are removed at the end, also on failure.
 */
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import knexFactory from 'knex';
import { DEV_JWT_SECRET } from '../../src/config.js';
import { createAgent, createProject, request, userToken, TEST_IMAGE, type Res } from '../support/http.js';
import { API_READY, freePort, spawnTsx, WORKER_READY, type Proc } from '../support/processes.js';
import { sleep } from '../support/wait.js';
import { OwnEngine } from './engines.js';

const run = promisify(execFile);
const TAG = crypto.randomBytes(3).toString('hex');
const ADMIN_DB_URL = process.env.TROUPE_CLUSTER_ADMIN_DB_URL ?? 'postgres://troupe:troupe@127.0.0.1:5432/postgres';
const DB_NAME = process.env.TROUPE_CLUSTER_DB ?? 'troupe_cluster_test';
const DB_URL = ADMIN_DB_URL.replace(/\/[^/]*$/, `/${DB_NAME}`);
const MAIN_ENGINE = 'unix:///var/run/docker.sock';
const DEAD_SECONDS = 10;
const ADMIN = 'cluster-admin';

const env: Record<string, string> = {
  DATABASE_URL: DB_URL,
  TROUPE_REDIS_PREFIX: `troupe-cluster-${TAG}`,
  TROUPE_INSTANCE: `cluster-${TAG}`,
  TROUPE_DEFAULT_IMAGE: TEST_IMAGE,
  TROUPE_LOG_LEVEL: 'info',
  TROUPE_JOB_LOCK_MS: '3000',
  TROUPE_REAPER_INTERVAL_MS: '5000',
  TROUPE_SHUTDOWN_TIMEOUT_MS: '5000',
  TROUPE_HOST_DEAD_SECONDS: String(DEAD_SECONDS),
  TROUPE_HOST_MAX_SANDBOXES: '60',
  TROUPE_POOL_SIZE: '1',
  TROUPE_ADMIN_USERS: ADMIN,
  TROUPE_PROJECT_MAX_SANDBOXES: '0',
  TROUPE_PROJECT_MAX_RUNNING_SESSIONS: '0',
  TROUPE_RATE_LIMIT_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_PER_IP_PER_MINUTE: '0',
  TROUPE_RATE_LIMIT_SESSIONS_PER_MINUTE: '0',
  HOST: '127.0.0.1',
};

const db = knexFactory({ client: 'pg', connection: DB_URL, pool: { min: 0, max: 4 } });
const engineB = new OwnEngine(TAG, `tcl${TAG}`, '10.213.77.1/24');
const procs: Proc[] = [];
const log = (msg: string) => console.log(`[cluster ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// --- processes ------------------------------------------------------------------------------------
const HOSTS = { a: { id: 'host-a', engine: MAIN_ENGINE }, b: { id: 'host-b', engine: '' } };
const workers: Record<'a' | 'b', Proc | undefined> = { a: undefined, b: undefined };

async function startWorker(which: 'a' | 'b'): Promise<Proc> {
  const h = HOSTS[which];
  const p = await spawnTsx({
    name: `worker-${which}`, script: 'workers/main.ts', ready: WORKER_READY, timeoutMs: 60_000, logFile: `test/cluster/results/worker-${which}-${procs.length}.log`,
    env: { ...env, TROUPE_HOST_ID: h.id, DOCKER_HOST: h.engine },
  });
  procs.push(p);
  workers[which] = p;
  return p;
}

async function startApi(name: string): Promise<string> {
  const port = await freePort();
  const p = await spawnTsx({ name, script: 'src/main.ts', args: ['--api-only'], ready: API_READY, timeoutMs: 60_000, env: { ...env, PORT: String(port) }, logFile: `test/cluster/results/${name}.log` });
  procs.push(p);
  return `http://127.0.0.1:${port}`;
}

// --- helpers --------------------------------------------------------------------------------------
function must<T>(r: Res<T>, status: number, what: string): T {
  if (r.status !== status && !(status === 202 && r.status === 200)) throw new Error(`${what}: expected ${status}, got ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function check(ok: unknown, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  log(`  ok: ${what}`);
}

/** Names of this run's sandbox containers on an engine, running (or all with `all`). */
async function containersOn(engine: string, opts: { all?: boolean } = {}): Promise<string[]> {
  const args = ['-H', engine, 'ps', ...(opts.all ? ['-a'] : []), '--filter', `label=troupe.instance=${env.TROUPE_INSTANCE}`, '--format', '{{.Names}}'];
  const out = (await run('docker', args)).stdout;
  return out.split('\n').filter((n) => n.startsWith('troupe-sbx-'));
}

async function containerState(engine: string, name: string): Promise<string> {
  return (await run('docker', ['-H', engine, 'inspect', '-f', '{{.State.Status}}', name]).catch(() => ({ stdout: 'gone' }))).stdout.trim();
}

const script = (steps: number, tag: string, sleepS = 1) => ({
  token_delay_ms: 5,
  turns: [
    ...Array.from({ length: steps }, (_, i) => ({ text: `step ${i + 1}`, tool_calls: [{ name: 'bash', input: { command: `sleep ${sleepS}; echo ${tag}-${i + 1} >> /workspace/log.txt` } }] })),
    { text: `done ${tag}` },
  ],
});

interface Verdict { id: string; lost: boolean; duplicated: boolean; stuck: boolean; recoveredMs?: number; why: string[] }

/** What the durable log says of one session: lost, duplicated, stuck (not at rest). */
async function verdict(id: string, steps: number, faultAt?: number): Promise<Verdict> {
  const s = await db('sessions').where({ id }).first('status');
  const events = await db('session_events').where({ session_id: id }).orderBy('event_index').select('event_index', 'event_type', 'payload', 'created_at');
  const why: string[] = [];
  const gap = events.some((e, i) => e.event_index !== i);
  const results = new Map<string, number>();
  const uses = new Map<string, number>();
  const turns = new Map<number, number>();
  for (const e of events) {
    if (e.event_type === 'tool_result') results.set(e.payload.tool_use_id, (results.get(e.payload.tool_use_id) ?? 0) + 1);
    if (e.event_type === 'tool_use') uses.set(e.payload.id, (uses.get(e.payload.id) ?? 0) + 1);
    if (e.event_type === 'message' && e.payload.role === 'assistant') turns.set(e.payload.turn, (turns.get(e.payload.turn) ?? 0) + 1);
  }
  const duplicated = [...results.values(), ...uses.values(), ...turns.values()].some((n) => n > 1);
  if (duplicated) why.push('duplicated');
  const stuck = s?.status !== 'idle';
  if (stuck) why.push(`status ${s?.status}`);
  const lost = gap || (!stuck && (results.size !== steps || turns.size !== steps + 1));
  if (lost) why.push(`gap=${gap} results=${results.size}/${steps} turns=${turns.size}/${steps + 1}`);
  let recoveredMs: number | undefined;
  if (faultAt) {
    // Recovered: the first step of work after the fault that ran in the new (or restarted) sandbox.
    const at = (e: { created_at: Date }) => new Date(e.created_at).getTime();
    const notice = events.find((e) => at(e) > faultAt && (e.payload.sandbox_replaced || e.payload.sandbox_restarted));
    const after = events.find((e) => at(e) > faultAt && (!notice || e.event_index > notice.event_index) && (e.event_type === 'tool_result' || e.event_type === 'message'));
    if (after) recoveredMs = at(after) - faultAt;
  }
  return { id, lost, duplicated, stuck, recoveredMs, why };
}

interface Row { scenario: string; affected: number; lost: number; duplicated: number; stuck: number; p50?: number; p99?: number }
const table: Row[] = [];
const pct = (xs: number[], p: number) => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
function record(scenario: string, vs: Verdict[], times: number[] = vs.map((v) => v.recoveredMs).filter((x): x is number => x !== undefined)): Row {
  const row = { scenario, affected: vs.length, lost: vs.filter((v) => v.lost).length, duplicated: vs.filter((v) => v.duplicated).length, stuck: vs.filter((v) => v.stuck).length, p50: pct(times, 50), p99: pct(times, 99) };
  table.push(row);
  for (const v of vs.filter((x) => x.why.length)) log(`  session ${v.id}: ${v.why.join('; ')}`);
  return row;
}

async function hostOf(sessionId: string): Promise<string | null> {
  const r = await db('sessions as s').join('sandboxes as sb', 'sb.id', 's.sandbox_id').where('s.id', sessionId).first('sb.host_id');
  return r?.host_id ?? null;
}

async function waitAtRest(ids: string[], timeoutMs: number): Promise<void> {
  await until(`${ids.length} sessions at rest`, async () => {
    const rows = await db('sessions').whereIn('id', ids).select('status');
    return rows.every((r) => ['idle', 'completed', 'failed', 'stopped'].includes(r.status));
  }, timeoutMs, 500).catch(() => log(`  (not all at rest after ${timeoutMs} ms)`));
}

// --- the run --------------------------------------------------------------------------------------
async function main() {
  log(`run ${TAG}: database ${DB_NAME}, own engine in ${engineB.dir}`);
  const admin = knexFactory({ client: 'pg', connection: ADMIN_DB_URL });
  await admin.raw(`drop database if exists ${DB_NAME} with (force)`);
  await admin.raw(`create database ${DB_NAME}`);
  await admin.destroy();
  await run('npx', ['tsx', 'scripts/migrate.ts', 'latest'], { env: { ...process.env, DATABASE_URL: DB_URL } });

  await engineB.start();
  HOSTS.b.engine = engineB.host;
  await engineB.loadImage(TEST_IMAGE);
  log('own engine up, image copied');

  await Promise.all([startWorker('a'), startWorker('b')]);
  const [apiA, apiB] = await Promise.all([startApi('api-a'), startApi('api-b')]);
  log(`2 hosts, 2 apis (${apiA}, ${apiB})`);

  const owner = `cluster-user-${TAG}`;
  const token = await userToken(owner, DEV_JWT_SECRET);
  const adminToken = await userToken(ADMIN, DEV_JWT_SECRET);
  const projectId = await createProject(apiA, token);
  const P = `/api/v1/projects/${projectId}`;
  /** Stops sessions (through api B), so the next scenario starts with empty hosts. */
  const stopAll = async (ids: string[]) => {
    for (const id of ids) await request(apiB, 'POST', `${P}/conversations/${id}/stop`, { token, body: {} });
  };
  const newSession = async (api: string, steps: number, tag: string, sleepS = 1) => {
    const agent = await createAgent(api, token, projectId, { script: script(steps, tag, sleepS), max_iterations: 50 });
    return must(await request(api, 'POST', '/api/v1/sessions', { token, body: { agent_id: agent.id, project_id: projectId, message: 'go' } }), 201, 'create session').id as string;
  };

  // 1. spread ---------------------------------------------------------------------------------
  log('scenario: spread over both engines');
  const spread = await Promise.all(Array.from({ length: 8 }, (_, i) => newSession(i % 2 ? apiB : apiA, 1, `spread${i}`)));
  await waitAtRest(spread, 90_000);
  const placed = await Promise.all(spread.map(hostOf));
  const onA = await containersOn(MAIN_ENGINE);
  const onB = await containersOn(engineB.host);
  const sbOf = async (id: string) => (await db('sessions').where({ id }).first('sandbox_id')).sandbox_id as string;
  const names = await Promise.all(spread.map(async (id) => `troupe-sbx-${await sbOf(id)}`));
  check(placed.includes('host-a') && placed.includes('host-b'), `sessions placed on both hosts (${placed.filter((h) => h === 'host-a').length} on a, ${placed.filter((h) => h === 'host-b').length} on b)`);
  check(names.every((n, i) => (placed[i] === 'host-a' ? onA : onB).includes(n) && !(placed[i] === 'host-a' ? onB : onA).includes(n)),
    `each engine's own docker ps shows exactly its host's containers (a: ${onA.length}, b: ${onB.length})`);
  record('spread over 2 engines', await Promise.all(spread.map((id) => verdict(id, 1))));

  // 2. control from either api, on either host -------------------------------------------------
  log('scenario: pause / resume / stop from either api on either host');
  const idxA = placed.indexOf('host-a');
  const idxB = placed.indexOf('host-b');
  const ctl = [{ id: spread[idxA], engine: MAIN_ENGINE, name: names[idxA], api: apiB }, { id: spread[idxB], engine: engineB.host, name: names[idxB], api: apiA }];
  for (const c of ctl) {
    must(await request(c.api, 'POST', `${P}/conversations/${c.id}/pause`, { token, body: {} }), 200, 'pause');
    check(await containerState(c.engine, c.name) === 'paused', `paused through ${c.api === apiA ? 'api A' : 'api B'}: ${c.name.slice(0, 20)}… is paused on its engine`);
    const other = c.api === apiA ? apiB : apiA;
    must(await request(other, 'POST', `${P}/conversations/${c.id}/resume`, { token, body: {} }), 200, 'resume');
    check(await until('unpaused', async () => (await containerState(c.engine, c.name)) === 'running', 15_000), `resumed through the other api: running on its engine`);
  }
  // 3. SSE on api A, session on host B ------------------------------------------------------------
  log('scenario: an SSE client on api A follows a session on host B');
  const onHostB = ctl[1].id;
  const marker = `sse-${TAG}`;
  const sse = await fetch(`${apiA}/api/v1/sessions/${onHostB}/stream?access_token=${encodeURIComponent(token)}&last_event_id=${(await db('session_events').where({ session_id: onHostB }).max('event_index as m').first())!.m}`);
  let seen = '';
  const reader = sse.body!.getReader();
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      seen += Buffer.from(value).toString();
    }
  })().catch(() => {});
  must(await request(apiB, 'POST', `${P}/conversations/${onHostB}/message`, { token, body: { message: `ping ${marker}` } }), 202, 'message via api B');
  await until('the SSE client on api A to see the turn run on host B', async () => seen.includes(marker) && /"status":"idle"/.test(seen.slice(seen.indexOf(marker))), 30_000);
  check(await hostOf(onHostB) === 'host-b', 'the SSE client on api A saw the message and the turn that ran on host B, to idle');
  await reader.cancel().catch(() => {});
  await reading;
  for (const c of ctl) {
    must(await request(c.api, 'POST', `${P}/conversations/${c.id}/stop`, { token, body: {} }), 200, 'stop');
    check(await until('removed', async () => (await containerState(c.engine, c.name)) === 'gone', 20_000), `stopped through ${c.api === apiA ? 'api A' : 'api B'}: the container is gone from its engine`);
  }
  table.push({ scenario: 'pause/resume/stop, either api', affected: 2, lost: 0, duplicated: 0, stuck: 0 });
  table.push({ scenario: 'SSE on api A, session on host B', affected: 1, lost: 0, duplicated: 0, stuck: 0 });

  // 4. kill -9 of a host with 20 sessions in flight ---------------------------------------------
  log('scenario: kill -9 of host a with 20 sessions in flight (40 over both hosts)');
  const STEPS = 4;
  const KSTEPS = 6;
  const flight = await Promise.all(Array.from({ length: 40 }, (_, i) => newSession(i % 2 ? apiB : apiA, KSTEPS, `k${i}`, 3)));
  await until('every session to be in flight (a tool result each)', async () => {
    const rows = await db('session_events').whereIn('session_id', flight).andWhere({ event_type: 'tool_result' }).countDistinct('session_id as n');
    return Number(rows[0].n) === flight.length;
  }, 90_000);
  // In flight: on host a and not yet at rest.
  const busy = async (ids: string[], host: string) => (await Promise.all(ids.map(async (id) => {
    const st = (await db('sessions').where({ id }).first('status')).status;
    return (await hostOf(id)) === host && (st === 'running' || st === 'queued') ? id : null;
  }))).filter((x): x is string => !!x);
  // Two of host a's sessions paused mid-run: recovered only when resumed (after the host is dead).
  const pausedOnA = (await busy(flight, 'host-a')).slice(0, 2);
  for (const id of pausedOnA) must(await request(apiA, 'POST', `${P}/conversations/${id}/pause`, { token, body: {} }), 200, 'pause before kill');
  const pausedNames = await Promise.all(pausedOnA.map(async (id) => `troupe-sbx-${await sbOf(id)}`));
  for (const n of pausedNames) check((await containerState(MAIN_ENGINE, n)) === 'paused', `paused before the kill: ${n.slice(0, 22)}… is paused on engine a`);
  const running = flight.filter((id) => !pausedOnA.includes(id));
  const onAnow = await busy(flight, 'host-a');
  const killAt = Date.now();
  workers.a!.child.kill('SIGKILL');
  await workers.a!.exited;
  log(`  killed host a (${onAnow.length} of the 40 sessions were on it)`);
  check(onAnow.length >= 15, `host a had ${onAnow.length} sessions in flight`);
  await waitAtRest(running, 120_000);
  const killVerdicts = await Promise.all(running.map((id) => verdict(id, KSTEPS, onAnow.includes(id) ? killAt : undefined)));
  const moved = await Promise.all(onAnow.map(hostOf));
  check(moved.every((h) => h === 'host-b'), `every session of host a now runs on host b (${moved.length}: ${JSON.stringify(moved)})`);
  const replaced = await db('session_events').whereIn('session_id', onAnow).whereRaw("payload->'sandbox_replaced' is not null").countDistinct('session_id as n');
  check(Number(replaced[0].n) === onAnow.length, `a durable sandbox_replaced event (files_lost) on each recovered session (${replaced[0].n})`);
  const row4 = record('kill -9 host, sessions in flight', killVerdicts.filter((v) => onAnow.includes(v.id)));
  record('  (the other host\'s sessions)', killVerdicts.filter((v) => !onAnow.includes(v.id)));
  // The paused ones stayed paused through the recovery; resumed (host a still dead), each gets a
  // fresh sandbox on host b, is told its files are lost, and carries on from its event log.
  const stillPaused = await db('sessions').whereIn('id', pausedOnA).andWhere({ status: 'paused' }).count('* as n');
  check(Number(stillPaused[0].n) === pausedOnA.length, `the ${pausedOnA.length} sessions paused on host a are still paused after its recovery`);
  const resumeAt = Date.now();
  for (const id of pausedOnA) must(await request(apiB, 'POST', `${P}/conversations/${id}/resume`, { token, body: {} }), 200, 'resume after host death');
  await waitAtRest(pausedOnA, 120_000);
  const pausedVerdicts = await Promise.all(pausedOnA.map((id) => verdict(id, KSTEPS, resumeAt)));
  check((await Promise.all(pausedOnA.map(hostOf))).every((h) => h === 'host-b'), 'each resumed session now has its sandbox on host b');
  const onBafter = await containersOn(engineB.host, { all: true });
  check((await Promise.all(pausedOnA.map(async (id) => `troupe-sbx-${await sbOf(id)}`))).every((n) => onBafter.includes(n)), 'engine b\'s docker ps shows their new containers');
  const pausedReplaced = await db('session_events').whereIn('session_id', pausedOnA).andWhere({ event_type: 'status' })
    .whereRaw("(payload->'sandbox_replaced'->>'files_lost')::boolean is true").andWhere('created_at', '>', new Date(resumeAt)).countDistinct('session_id as n');
  check(Number(pausedReplaced[0].n) === pausedOnA.length, `a durable status event sandbox_replaced {files_lost: true} on each, after the resume (${pausedReplaced[0].n})`);
  record('paused on a killed host, resumed', pausedVerdicts);
  // The host comes back: its stale containers go.
  const staleNames = [...pausedNames, ...await Promise.all(onAnow.map(async (id) => `troupe-sbx-${await sbOf(id)}`))];
  await startWorker('a');
  await until('host a removes its stale containers', async () => {
    const left = await containersOn(MAIN_ENGINE, { all: true });
    return !staleNames.some((n) => left.includes(n));
  }, 30_000);
  check(true, 'host a, restarted after being declared dead, removed its stale containers from its engine');
  void row4;

  // 5. one host's dockerd killed -------------------------------------------------------------------
  await stopAll([...spread, ...flight]);
  log('scenario: host b\'s dockerd killed (-9) mid-load, then restarted');
  const load = await Promise.all(Array.from({ length: 12 }, (_, i) => newSession(i % 2 ? apiB : apiA, STEPS, `d${i}`, 2)));
  await until('the load to be in flight', async () => {
    const rows = await db('session_events').whereIn('session_id', load).andWhere({ event_type: 'tool_result' }).countDistinct('session_id as n');
    return Number(rows[0].n) === load.length;
  }, 90_000);
  const onBnow = await busy(load, 'host-b');
  const engineKillAt = Date.now();
  await engineB.kill();
  log(`  killed dockerd of host b (${onBnow.length} of the 12 sessions were on it)`);
  await waitAtRest(load, 120_000);
  const engineVerdicts = await Promise.all(load.map((id) => verdict(id, STEPS, onBnow.includes(id) ? engineKillAt : undefined)));
  const movedB = await Promise.all(onBnow.map(hostOf));
  check(movedB.every((h) => h === 'host-a'), `every session of host b now runs on host a (${movedB.length}: ${JSON.stringify(movedB)})`);
  record('dockerd of a host killed', engineVerdicts.filter((v) => onBnow.includes(v.id)));
  record('  (the other host\'s sessions)', engineVerdicts.filter((v) => !onBnow.includes(v.id)));
  const staleB = await Promise.all(onBnow.map(async (id) => `troupe-sbx-${await sbOf(id)}`));
  await engineB.start();
  await until('host b back live, its stale containers removed', async () => {
    const h = await db('hosts').where({ id: 'host-b' }).first('state');
    const left = await containersOn(engineB.host, { all: true });
    return h?.state === 'live' && !staleB.some((n) => left.includes(n));
  }, 60_000);
  check(true, 'engine b restarted: host b is live again and removed the stale containers of the sessions recovered elsewhere');
  const pool = await until('the warm pool on engine b rebuilt', async () => (await run('docker', ['-H', engineB.host, 'ps', '--filter', `label=troupe.instance=${env.TROUPE_INSTANCE}`, '--filter', 'name=troupe-pool-', '-q'])).stdout.trim(), 30_000);
  check(pool, 'the warm pool on engine b rebuilt');

  // 5b. the engine restarted at once (issue 12): shorter than TROUPE_HOST_DEAD_SECONDS ------------
  await stopAll(load);
  log('scenario: host b\'s dockerd restarted mid-load (kill -9, started again at once)');
  const load2 = await Promise.all(Array.from({ length: 12 }, (_, i) => newSession(i % 2 ? apiB : apiA, STEPS, `r${i}`, 2)));
  await until('the load to be in flight', async () => {
    const rows = await db('session_events').whereIn('session_id', load2).andWhere({ event_type: 'tool_result' }).countDistinct('session_id as n');
    return Number(rows[0].n) === load2.length;
  }, 90_000);
  const onB2 = await busy(load2, 'host-b');
  const restartAt = Date.now();
  await engineB.kill();
  await engineB.start();
  log(`  dockerd of host b restarted in ${((Date.now() - restartAt) / 1000).toFixed(1)}s (${onB2.length} of the 12 sessions were on it)`);
  await waitAtRest(load2, 120_000);
  const restartVerdicts = await Promise.all(load2.map((id) => verdict(id, STEPS, onB2.includes(id) ? restartAt : undefined)));
  const restarted = await db('session_events').whereIn('session_id', onB2).whereRaw("payload->'sandbox_restarted' is not null").countDistinct('session_id as n');
  const replacedB = await db('session_events').whereIn('session_id', onB2).whereRaw("payload->'sandbox_replaced' is not null").countDistinct('session_id as n');
  const failedB = await db('sessions').whereIn('id', onB2).andWhere({ status: 'failed' }).select('error');
  log(`  after the restart: ${restarted[0].n} told "sandbox_restarted" (files kept), ${replacedB[0].n} "sandbox_replaced" (moved, files lost), ${failedB.length} failed${failedB.length ? `: ${failedB[0].error}` : ''}`);
  record('dockerd restarted at once', restartVerdicts.filter((v) => onB2.includes(v.id)));
  await until('the warm pool on engine b rebuilt', async () => (await run('docker', ['-H', engineB.host, 'ps', '--filter', `label=troupe.instance=${env.TROUPE_INSTANCE}`, '--filter', 'name=troupe-pool-', '-q'])).stdout.trim(), 30_000);
  check(true, 'the warm pool on engine b rebuilt after the restart');

  // 6. drain ------------------------------------------------------------------------------------------
  await stopAll(load2);
  log('scenario: drain host b (idle and paused sandboxes move with their files)');
  const drainSet = await Promise.all(Array.from({ length: 6 }, (_, i) => newSession(apiA, 1, `dr${i}`)));
  await waitAtRest(drainSet, 60_000);
  // Make sure some sit on host b (placement is least-loaded: b is empty after its restart).
  const onBdrain = (await Promise.all(drainSet.map(async (id) => ((await hostOf(id)) === 'host-b' ? id : null)))).filter((x): x is string => !!x);
  check(onBdrain.length > 0, `${onBdrain.length} of the 6 new sessions were placed on host b`);
  const marks = new Map<string, string>();
  for (const id of onBdrain) marks.set(id, (await engineB.docker(['exec', `troupe-sbx-${await sbOf(id)}`, 'cat', '/workspace/log.txt']).catch(() => '')).trim());
  // One of them paused, to move frozen.
  must(await request(apiB, 'POST', `${P}/conversations/${onBdrain[0]}/pause`, { token, body: {} }), 200, 'pause before drain');
  const drainAt = Date.now();
  must(await request(apiA, 'POST', '/api/v1/admin/hosts/host-b/drain', { token: adminToken, body: {} }), 202, 'drain');
  const movedAt = new Map<string, number>();
  await until('every sandbox of host b moved', async () => {
    for (const id of onBdrain) if (!movedAt.has(id) && (await hostOf(id)) === 'host-a') movedAt.set(id, Date.now() - drainAt);
    return movedAt.size === onBdrain.length;
  }, 60_000, 100);
  for (const id of onBdrain) {
    const name = `troupe-sbx-${await sbOf(id)}`;
    const wasPaused = id === onBdrain[0];
    if (wasPaused) check((await containerState(MAIN_ENGINE, name)) === 'paused', 'the paused sandbox is paused on the target engine');
    if (wasPaused) await run('docker', ['unpause', name]);
    const there = (await run('docker', ['exec', name, 'cat', '/workspace/log.txt'])).stdout.trim();
    if (wasPaused) await run('docker', ['pause', name]);
    check(there === marks.get(id) && there.length > 0, `moved with its files: ${name.slice(0, 22)}… /workspace/log.txt on engine a = "${there}"`);
  }
  check(await until('host b exits after draining', async () => !workers.b!.alive(), 30_000), 'host b exited once drained');
  const afterB = await containersOn(engineB.host, { all: true });
  check(!afterB.length, 'no sandbox container left on engine b');
  const events = await db('session_events').whereIn('session_id', onBdrain).whereRaw("payload->'sandbox_replaced' is not null").count('* as n');
  check(Number(events[0].n) === 0, 'no session of a moved sandbox was told its files were lost');

  // 6b. drain by SIGTERM: host b comes back, host a gets SIGTERM; every sandbox of host a (the
  // six above, the paused one still paused) moves back to engine b with its files.
  log('scenario: SIGTERM to host a\'s worker drains it onto host b');
  await startWorker('b');
  await until('host b live again', async () => (await db('hosts').where({ id: 'host-b' }).first('state'))?.state === 'live', 30_000);
  const readLog = async (engine: string, name: string, paused: boolean) => {
    if (paused) await run('docker', ['-H', engine, 'unpause', name]);
    const out = (await run('docker', ['-H', engine, 'exec', name, 'cat', '/workspace/log.txt'])).stdout.trim();
    if (paused) await run('docker', ['-H', engine, 'pause', name]);
    return out;
  };
  const marksA = new Map<string, string>();
  for (const id of drainSet) marksA.set(id, await readLog(MAIN_ENGINE, `troupe-sbx-${await sbOf(id)}`, id === onBdrain[0]));
  const termAt = Date.now();
  workers.a!.child.kill('SIGTERM');
  const movedBack = new Map<string, number>();
  await until('every sandbox of host a moved to host b', async () => {
    for (const id of drainSet) if (!movedBack.has(id) && (await hostOf(id)) === 'host-b') movedBack.set(id, Date.now() - termAt);
    return movedBack.size === drainSet.length;
  }, 60_000, 100);
  for (const id of drainSet) {
    const name = `troupe-sbx-${await sbOf(id)}`;
    const wasPaused = id === onBdrain[0];
    if (wasPaused) check((await containerState(engineB.host, name)) === 'paused', 'the paused sandbox is paused on engine b');
    const there = await readLog(engineB.host, name, wasPaused);
    check(there === marksA.get(id) && there.length > 0, `moved by SIGTERM with its files: ${name.slice(0, 22)}… /workspace/log.txt on engine b = "${there}"`);
  }
  check(await until('host a exits after draining', async () => !workers.a!.alive(), 30_000), 'host a exited once drained (SIGTERM)');
  check(!(await containersOn(MAIN_ENGINE, { all: true })).length, 'no sandbox container of this run left on engine a');
  const termEvents = await db('session_events').whereIn('session_id', drainSet).whereRaw("payload->'sandbox_replaced' is not null").count('* as n');
  check(Number(termEvents[0].n) === 0, 'no session moved by SIGTERM was told its files were lost');
  // The moved sessions carry on: the paused one resumes, another takes a message.
  must(await request(apiB, 'POST', `${P}/conversations/${onBdrain[0]}/resume`, { token, body: {} }), 200, 'resume after move');
  if (onBdrain[1]) must(await request(apiB, 'POST', `${P}/conversations/${onBdrain[1]}/message`, { token, body: { message: 'again' } }), 202, 'message after move');
  await sleep(1000);
  await waitAtRest(drainSet, 30_000);
  const drainVerdicts = await Promise.all(onBdrain.map(async (id) => {
    const v = await verdict(id, 1);
    v.recoveredMs = movedAt.get(id);
    // A message after the move adds a turn the script does not have: judge only what it must keep.
    v.lost = v.lost && !v.why.every((w) => w.startsWith('gap=false'));
    return v;
  }));
  record('drain by route (moved with files)', drainVerdicts);
  const termVerdicts = await Promise.all(drainSet.map(async (id) => {
    const v = await verdict(id, 1);
    v.recoveredMs = movedBack.get(id);
    v.lost = v.lost && !v.why.every((w) => w.startsWith('gap=false'));
    return v;
  }));
  record('drain by SIGTERM (moved with files)', termVerdicts);

  // ---------------------------------------------------------------------------------------------------
  const hosts = must(await request(apiB, 'GET', '/api/v1/admin/hosts', { token: adminToken }), 200, 'admin hosts');
  log(`admin hosts: ${JSON.stringify(hosts.hosts.map((h: { id: string; state: string; sandboxes: unknown }) => [h.id, h.state, h.sandboxes]))}`);
  const metrics = await fetch(`${apiA}/metrics`).then((r) => r.text());
  check(/troupe_host_sandboxes\{host="host-b",state="active"\}/.test(metrics), '/metrics has per-host series');
}

function printTable() {
  const fmt = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);
  const head = ['scenario', 'affected', 'lost', 'duplicated', 'stuck', 'recovery p50', 'p99'];
  const rows = table.map((r) => [r.scenario, String(r.affected), String(r.lost), String(r.duplicated), String(r.stuck), fmt(r.p50), fmt(r.p99)]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  console.log(`\n${line(head)}\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|\n${rows.map(line).join('\n')}\n`);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`\ncluster test FAILED: ${(err as Error).stack ?? err}`);
  for (const p of procs) if (p.alive() || failed) console.error(`--- ${p.name} (last output)\n${p.output().slice(-2500)}`);
} finally {
  printTable();
  await Promise.all(procs.map((p) => p.stop(5000).catch(() => {})));
  // This run's containers on the machine's engine (its own instance label only).
  const mine = (await run('docker', ['ps', '-aq', '--filter', `label=troupe.instance=${env.TROUPE_INSTANCE}`]).catch(() => ({ stdout: '' }))).stdout.trim();
  if (mine) await run('docker', ['rm', '-f', ...mine.split(/\s+/)]).catch(() => {});
  await engineB.destroy().catch((err) => console.error('could not remove the extra engine:', err));
  await db.destroy();
  const bad = table.some((r) => r.lost || r.duplicated || r.stuck);
  if (bad) console.error('cluster test FAILED: sessions lost, duplicated or stuck (table above)');
  process.exit(failed || bad ? 1 : 0);
}
