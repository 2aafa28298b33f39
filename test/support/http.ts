/**
 * Talking to a Troupe api as a client does, shared by the mocha suite (test/support/harness.ts),
 * the fault suite (test/faults) and the benchmark (bench/lib): one JSON-over-HTTP helper, user
 * tokens, unique names, and the two fixtures every scenario starts from (a project, an agent).
 */
import crypto from 'node:crypto';
import { SignJWT } from 'jose';

export interface Res<T = any> {
  status: number;
  body: T;
  /** The raw response text (the body before JSON parsing). */
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is (content-type JSON unless given). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** Abort the request after this long (default: no limit). */
  timeoutMs?: number;
}

/** One request to `base + path`; the body is parsed as JSON when it is JSON. Never throws on a status. */
export async function request<T = any>(base: string, method: string, path: string, opts: RequestOptions = {}): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization ??= `Bearer ${opts.token}`;
  let body: string | Buffer | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, {
    method, headers, body: body as BodyInit | undefined,
    signal: opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, text, headers: res.headers };
}

export const uniq = (p = 'u') => `${p}-${crypto.randomBytes(4).toString('hex')}`;

/** A user JWT (HS256, `sub` = the user id) signed with the api's secret. */
export async function userToken(sub: string, secret: string, expiresIn = '1d'): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** The image every test, fault and benchmark agent runs in (built by scripts/build-images.sh). */
export const TEST_IMAGE = 'troupe-sandbox-minimal:latest';

/** A new project owned by the token's user; returns its id. */
export async function createProject(base: string, token: string, name = uniq('project')): Promise<string> {
  const r = await request(base, 'POST', '/api/v1/projects', { token, body: { name } });
  if (r.status !== 201) throw new Error(`project create failed: ${r.status} ${r.text}`);
  return r.body.id;
}

/** A scripted agent on the minimal image (override anything in `body`). */
export async function createAgent(base: string, token: string, projectId: string, body: Record<string, unknown> = {}): Promise<any> {
  const r = await request(base, 'POST', `/api/v1/projects/${projectId}/agents`, {
    token, body: { name: uniq('agent'), llm_provider: 'scripted', sandbox: { image: TEST_IMAGE }, ...body },
  });
  if (r.status !== 201) throw new Error(`agent create failed: ${r.status} ${r.text}`);
  return r.body;
}
