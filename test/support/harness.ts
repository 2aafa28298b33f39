/**
 * Test helpers: a real api server on a random port, a real session worker, and the kit's HTTP
 * client (http.ts) and waits (wait.ts) bound to them. Each test makes its own users and project,
 * so tests never see each other's data.
 */
import { startApiServer, type ApiServer } from '../../src/server.js';
import { signUserToken } from '../../src/http/auth.js';
import { db } from '../../src/db/knex.js';
import { createAgent, request, uniq, type Res } from './http.js';

export { uniq, type Res } from './http.js';
export { sleep, waitFor } from './wait.js';

let api: ApiServer | undefined;
export async function apiServer(): Promise<ApiServer> {
  api ??= await startApiServer({ port: 0, host: '127.0.0.1' });
  return api;
}

let worker: { close(): Promise<void> } | undefined;
/** The in-process session worker (reaper off: tests sweep explicitly). */
export async function sessionWorker(): Promise<void> {
  if (worker) return;
  const { startSessionWorker } = await import('../../src/runtime/worker.js');
  worker = await startSessionWorker({ concurrency: 20, reaper: false });
}

export async function call<T = any>(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  return request<T>((await apiServer()).url, method, path, opts);
}

export async function newUser(name = uniq('user')): Promise<{ id: string; token: string }> {
  return { id: name, token: await signUserToken(name) };
}

/** A user who owns a fresh project. */
export async function newProject(): Promise<{ owner: { id: string; token: string }; projectId: string }> {
  const owner = await newUser();
  const res = await call('POST', '/api/v1/projects', { token: owner.token, body: { name: uniq('project') } });
  if (res.status !== 201) throw new Error(`project create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { owner, projectId: res.body.id };
}

export async function addMember(projectId: string, ownerToken: string, role: string) {
  const u = await newUser();
  const r = await call('POST', `/api/v1/projects/${projectId}/members`, { token: ownerToken, body: { user_id: u.id, role } });
  if (r.status !== 201) throw new Error(`add member failed: ${r.status} ${JSON.stringify(r.body)}`);
  return u;
}

export async function newAgent(projectId: string, token: string, body: Record<string, unknown> = {}) {
  return createAgent((await apiServer()).url, token, projectId, body);
}

/** Counts rows of every table a bad request could touch: equal before and after = nothing changed. */
export async function snapshotCounts(projectId?: string): Promise<Record<string, number>> {
  const tables = ['projects', 'project_members', 'agents', 'agent_api_keys', 'agent_mcp_servers', 'agent_skills', 'agent_types', 'sandboxes', 'sessions', 'session_events'];
  const out: Record<string, number> = {};
  // Sessions of earlier tests may still be writing: with a project, count its session rows only.
  const scoped = new Set(['sandboxes', 'sessions', 'session_events']);
  for (const t of tables) {
    const q = db(t);
    if (projectId && scoped.has(t)) q.where({ project_id: projectId });
    out[t] = Number((await q.count<{ count: string }[]>('* as count'))[0].count);
  }
  // Last change to the rows a request could update; scoped to one project when given, so
  // sessions still settling elsewhere in the suite do not count.
  const scope = projectId ? `where project_id = '${projectId}'` : '';
  const upd = await db.raw(`select coalesce(max(updated_at), 'epoch') as m from (
    select updated_at, project_id from agents union all select updated_at, project_id from sessions
    union all select s.updated_at, a.project_id from agent_skills s join agents a on a.id = s.agent_id
    union all select m.updated_at, a.project_id from agent_mcp_servers m join agents a on a.id = m.agent_id) x ${scope}`);
  out.last_update = new Date(upd.rows[0].m).getTime();
  return out;
}

export async function shutdownHarness(): Promise<void> {
  await worker?.close();
  worker = undefined;
  await api?.close();
  api = undefined;
}
