/**
 * Fuzz: thousands of malformed or hostile requests across every route in GET /openapi.json,
 * against a running api process on 127.0.0.1, bounded in count and time.
 *
 * Phase 1, requests that must be rejected: bad or foreign tokens, other projects' ids, hostile
 * ids, bodies that break their schema (wrong types, malformed JSON, huge, deeply nested,
 * prototype keys, wrong content types), random query strings. Checks: no 5xx and no hang; no
 * write accepted; every table's rows identical before and after (and the project's agents and
 * sessions as the API shows them).
 * Phase 2, requests that may be accepted: schema-valid bodies full of hostile strings and
 * numbers, by a throwaway user in a throwaway project. Checks: no 5xx, no hang.
 * Then: the process is still up (and /healthz answers), and its log has no unhandled error.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { config } from '../../../src/config.js';
import { call, q, uniq, userToken } from '../client.js';
import { LOG_DIR, sleep, type Cluster } from '../cluster.js';
import { emptyResult, type FaultResult } from '../report.js';

type Schema = Record<string, any>;
interface Route {
  method: string;
  path: string;
  params: string[];
  query: Record<string, Schema>;
  body?: Schema;
  auth: boolean;
  stream: boolean;
}

// --- randomness (seeded, so a failing run can be replayed with --seed=) -------------------------
let seed = Number(process.argv.find((a) => a.startsWith('--seed='))?.split('=')[1] ?? Date.now() % 1e9);
const initialSeed = seed;
function rnd(): number {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const chance = (p: number) => rnd() < p;
const uuid4 = () => 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (ch) => {
  const r = Math.floor(rnd() * 16);
  return (ch === 'x' ? r : (r & 0x3) | 0x8).toString(16);
});

// --- hostile values -----------------------------------------------------------------------------
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const HOSTILE_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff\ud800', '😀'.repeat(50), "' OR '1'='1", '"; DROP TABLE sessions; --', "'); DELETE FROM agents; --",
  '../../../../etc/passwd', '..\\..\\windows', '%00', '%2e%2e%2f', '<script>alert(1)</script>', '${jndi:ldap://127.0.0.1/x}', '{{7*7}}', '$(id)', '`id`',
  'null', 'undefined', 'NaN', 'true', '-1', '0', '1e309', '99999999999999999999', '-99999999999999999999', '0x10', 'x'.repeat(10_000), 'y'.repeat(200_000),
  '__proto__', 'constructor', 'prototype', 'ａｄｍｉｎ', '\u202egnp.exe', '\t\r\n', 'http://127.0.0.1:1/x', 'file:///etc/passwd', 'javascript:alert(1)',
  '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF', '2024-13-45T99:99:99Z',
];
// eslint-disable-next-line no-loss-of-precision -- deliberately beyond double precision: hostile input
const HOSTILE_NUMBERS = [-1, 0, 1.5, -0.0001, 1e308, -1e308, 2 ** 31, 2 ** 53 + 2, 99999999999999999999, -99999999999999999999, 1e21];
const hostileJson = (): string => {
  switch (Math.floor(rnd() * 12)) {
    case 0: return JSON.stringify(pick(HOSTILE_STRINGS));
    case 1: return String(pick(HOSTILE_NUMBERS));
    case 2: return pick(['true', 'false', 'null', '{}', '[]', '[null]', '[[]]', '{"":""}']);
    case 3: return deepArray(pick([100, 2000, 20_000]));
    case 4: return deepObject(pick([100, 2000, 20_000]));
    case 5: return '{"__proto__":{"isAdmin":true,"role":"owner"},"constructor":{"prototype":{"polluted":true}}}';
    case 6: return `[${Array.from({ length: 1000 }, () => '{"a":1}').join(',')}]`;
    case 7: return `{${Array.from({ length: 2000 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    case 8: return '1e999';
    case 9: return '"\\ud800"';
    case 10: return JSON.stringify({ a: pick(HOSTILE_STRINGS), b: [pick(HOSTILE_NUMBERS)] });
    default: return '-0';
  }
};
const MALFORMED = [
  '{', '{"a":', '{"a":1,}', "{'a':1}", 'nul', '[1,2', '{"a":1}{"b":2}', '{"a":"\\x41"}', '{"a":01}', '{"a":.5}', '{"a":NaN}', '{"a":Infinity}',
  '\u0000', '\ufeff{"a":', '{"a":"unterminated', '{"a":1}garbage', '/* c */ {}', '{"a" 1}', '{,}', '[,]', ' ', '{"a":tru}',
];
const nonObjectBodies = () => pick(['[]', '"text"', '123', 'null', 'true', deepArray(pick([10, 5000, 50_000])), '[{}]', '-1', '1e999']);

// --- JSON Schema → values -------------------------------------------------------------------------
type IdResolver = (name: string) => string | undefined;

function wrongTypeValue(s: Schema): unknown {
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  const candidates: unknown[] = [];
  if (!types.includes('string')) candidates.push('not-a-' + (types[0] ?? 'thing'), '\u0000');
  if (!types.includes('integer') && !types.includes('number')) candidates.push(12345, -1.5, 1e308);
  if (!types.includes('boolean')) candidates.push(true);
  if (!types.includes('object')) candidates.push({ nested: { deep: [1, 2, 3] } }, {});
  if (!types.includes('array')) candidates.push([1, 'two', null]);
  if (!types.includes('null')) candidates.push(null);
  if (types.includes('integer') && !types.includes('number')) candidates.push(1.5);
  return pick(candidates);
}

/** A value valid for `s` (as far as this generator knows), with hostile content where allowed. */
function validValue(s: Schema, name: string, ids: IdResolver, hostile: boolean, depth = 0): unknown {
  if (s.const !== undefined) return s.const;
  if (s.enum) return pick(s.enum);
  if (s.oneOf || s.anyOf) return validValue(pick(s.oneOf ?? s.anyOf), name, ids, hostile, depth);
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : ['string'];
  const type = types.includes('null') && types.length > 1 && chance(0.8) ? types.find((t) => t !== 'null')! : pick(types);
  const id = ids(name);
  switch (type) {
    case 'null': return null;
    case 'boolean': return chance(0.5);
    case 'integer': case 'number': {
      const min = s.minimum ?? s.exclusiveMinimum ?? 0;
      const max = s.maximum ?? s.exclusiveMaximum ?? min + 100;
      if (hostile && chance(0.3)) return pick([min, max]);
      return type === 'integer' ? Math.floor(min + rnd() * Math.max(0, max - min)) : min + rnd() * (max - min);
    }
    case 'array': {
      const n = Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, hostile ? Math.floor(rnd() * 4) : 1));
      return Array.from({ length: n }, () => validValue(s.items ?? { type: 'string' }, name, ids, hostile, depth + 1));
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const req = new Set<string>(s.required ?? []);
      for (const [k, ps] of Object.entries(props)) {
        if (ps.readOnly) continue;
        if (req.has(k) || chance(hostile ? 0.6 : 0.3)) out[k] = validValue(ps, k, ids, hostile, depth + 1);
      }
      if (s.minProperties && Object.keys(out).length < s.minProperties) {
        for (const [k, ps] of Object.entries(props)) if (!(k in out) && Object.keys(out).length < s.minProperties) out[k] = validValue(ps, k, ids, hostile, depth + 1);
      }
      if (hostile && s.additionalProperties !== false && s.additionalProperties !== undefined && depth < 3 && chance(0.5)) {
        out[pick(['__proto__', 'constructor', 'k', 'a'.repeat(200)])] = chance(0.5) ? pick(HOSTILE_STRINGS) : { deep: JSON.parse(deepArray(50)) };
      }
      return out;
    }
    default: {
      if (id) return id;
      if (s.format === 'uuid') return uuid4();
      if (s.format === 'uri' || s.format === 'url') return pick(['http://127.0.0.1:1/hook', 'https://127.0.0.1:1/x']);
      if (s.format === 'email') return 'x@example.invalid';
      if (s.format === 'date-time') return new Date().toISOString();
      if (s.pattern) return patternSample(s);
      const minL = s.minLength ?? 0;
      const maxL = s.maxLength ?? 200;
      let v = hostile ? pick(HOSTILE_STRINGS) : `fuzz-${uniq('v')}`;
      if (v.length > maxL) v = v.slice(0, maxL);
      while (v.length < minL) v += 'x';
      return v;
    }
  }
}

function patternSample(s: Schema): string {
  // The patterns in use are simple character classes; a name of word characters fits most.
  const tries = [`fuzz_${Math.floor(rnd() * 1e6)}`, 'fuzz-a', 'A', 'fuzz.a', 'ab'];
  const re = new RegExp(s.pattern);
  return tries.find((t) => re.test(t)) ?? 'fuzz';
}

/** A body that must fail validation: not an object, or a property of the wrong type. */
function invalidBody(s: Schema, ids: IdResolver): string {
  const props = Object.entries((s.properties ?? {}) as Record<string, Schema>).filter(([, ps]) => ps.type && !ps.oneOf && !ps.anyOf);
  if (!props.length || chance(0.3)) return nonObjectBodies();
  const base = validValue(s, '', ids, true) as Record<string, unknown>;
  const [k, ps] = pick(props);
  base[k] = wrongTypeValue(ps);
  // A deep or huge value alongside, so the validator sees it too.
  const extra = chance(0.3) ? pick([deepArray(5000), deepObject(5000), JSON.stringify('z'.repeat(300_000))]) : null;
  let text = JSON.stringify(base);
  if (chance(0.2)) text = text.replace(/^\{/, '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"polluted":true}},').replace(/,}$/, '}');
  if (extra && Object.keys(base).length > 0) {
    const other = Object.keys(s.properties).find((p) => p !== k && (s.properties[p].type === 'object' || s.properties[p].type === 'string'));
    if (other) return text.replace(/}$/, `,${JSON.stringify(other)}:${extra}}`).replace(/^\{,/, '{');
  }
  return text;
}

// --- fixtures ---------------------------------------------------------------------------------------
interface Fix {
  user: string;
  token: string;
  project: string;
  agent: string;
  agentHandle: string;
  agent2?: string;
  member?: string;
  keyId?: string;
  key?: string;
  key2?: string;
  mcp?: string;
  skill?: string;
  session?: string;
  sandbox?: string;
  chat?: string;
  connection?: string;
  task?: string;
  pair?: string;
  notes: string[];
}

async function fixtures(base: string, label: string): Promise<Fix> {
  const user = uniq(`fuzz-${label}`);
  const token = await userToken(user);
  const f: Partial<Fix> & { notes: string[] } = { user, token, notes: [] };
  const post = async (p: string, body: unknown, tok = token) => {
    const r = await call(base, 'POST', p, { token: tok, body });
    if (r.status >= 300) f.notes.push(`${label}: POST ${p} → ${r.status} ${r.text.slice(0, 120)}`);
    return r.status < 300 ? r.body : undefined;
  };
  f.project = (await post('/api/v1/projects', { name: `fuzz ${label}` })).id;
  const P = `/api/v1/projects/${f.project}`;
  const handle = `fz-${label.toLowerCase()}-${Math.floor(rnd() * 1e6)}`;
  const a1 = await post(`${P}/agents`, { name: `Fuzz ${label}`, handle, llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' } });
  f.agent = a1.id;
  f.agentHandle = handle;
  f.agent2 = (await post(`${P}/agents`, { name: `Fuzz ${label} two`, llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' } }))?.id;
  f.member = (await post(`${P}/members`, { user_id: uniq('viewer'), role: 'viewer' }))?.id;
  const k1 = await post(`${P}/agents/${f.agent}/api-keys`, { name: 'k1' });
  f.keyId = k1?.id;
  f.key = k1?.key;
  if (f.agent2) f.key2 = (await post(`${P}/agents/${f.agent2}/api-keys`, { name: 'k2' }))?.key;
  f.mcp = (await post(`${P}/agents/${f.agent}/mcp-servers`, { server_name: 'fs', transport: 'stdio', command: 'true' }))?.id;
  f.skill = (await post(`${P}/agents/${f.agent}/skills`, { skill_name: 'guide', skill_source: 'inline', skill_content: '---\nname: guide\ndescription: d\n---\n# Guide\n', triggers: ['guide'] }))?.id;
  f.session = (await post('/api/v1/sessions', { agent_id: f.agent, project_id: f.project }))?.id;
  f.sandbox = (await post('/api/v1/sandboxes', { agent: f.agent, project_id: f.project }))?.id;
  f.chat = (await post(`${P}/agents/${f.agent}/chat-sessions`, { message: 'hello' }))?.id;
  if (f.key && f.key2 && f.agent2) {
    const code = await post('/api/v1/pairing-codes', {}, f.key);
    const conn = code && (await post('/api/v1/connections', { pairingCode: code.code }, f.key2));
    f.connection = conn?.id;
    if (conn) f.task = (await post('/api/v1/tasks', { toAgentId: f.agent2, title: 'fuzz task', message: 'do it' }, f.key))?.id;
  }
  f.pair = (await post('/api/v1/pair-sessions', { agent_id: f.agent, project_id: f.project, message: 'hi' }))?.id;
  return f as Fix;
}

/** Which fixture a path parameter names, from the parameter and the path around it. */
function paramKind(p: string, name: string): keyof Fix | undefined {
  if (name === 'projectId') return 'project';
  if (name === 'agentId') return 'agent';
  if (name === 'memberId') return 'member';
  if (name === 'keyId') return 'keyId';
  if (name === 'serverId') return 'mcp';
  if (name === 'skillId') return 'skill';
  if (name === 'conversationId' || name === 'sid') return 'session';
  if (name === 'taskId') return 'task';
  if (name === 'sessionId' && p.includes('chat-sessions')) return 'chat';
  if (name === 'id') {
    if (p.startsWith('/api/v1/sandboxes')) return 'sandbox';
    if (p.startsWith('/api/sessions')) return 'session';
    if (p.includes('connections')) return 'connection';
    if (p.includes('pair-sessions')) return 'pair';
  }
  // A route family added later: `<fixture>Id` names a fixture when one exists; anything else
  // gets a random id (the request still goes out, it just finds nothing).
  const stem = /^([a-z]+)Id$/.exec(name)?.[1];
  if (stem && FIXTURE_KINDS.includes(stem as keyof Fix)) return stem as keyof Fix;
  return undefined;
}
const FIXTURE_KINDS: Array<keyof Fix> = ['project', 'agent', 'member', 'mcp', 'skill', 'session', 'sandbox', 'chat', 'connection', 'task', 'pair'];

/** Ids for body fields by name. */
function bodyIds(f: Fix): IdResolver {
  return (name) => {
    switch (name) {
      case 'project_id': return f.project;
      case 'agent_id': case 'agent': case 'agentId': case 'asAgentId': return f.agent;
      case 'toAgentId': return f.agent2 ?? f.agent;
      case 'conversation_id': case 'session_id': return f.session;
      case 'sandbox_id': return f.sandbox;
      case 'task_id': return f.task;
      default: return undefined;
    }
  };
}

const HOSTILE_IDS = [
  'not-a-uuid', '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '%00', "'", '"', '..', '%2e%2e', 'a'.repeat(5000),
  '%E0%A4%A', '%', '%ZZ', '1', '-1', '99999999999999999999', 'null', 'undefined', '__proto__', 'constructor', '😀', '%F0%9F%98%80', ' ', '%20', '\\',
];

// --- requests -------------------------------------------------------------------------------------
interface Req {
  phase: 1 | 2;
  mode: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  route: Route;
}

function fillPath(route: Route, ids: (kind: keyof Fix | undefined, name: string) => string): string {
  return route.path.replace(/\{([^}/]+)\}/g, (_, name: string) => ids(paramKind(route.path, name), name));
}

/** encodeURIComponent, but lone surrogates become U+FFFD instead of throwing. */
const enc = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...Buffer.from(v)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
};

function randomQuery(route: Route): string {
  const parts: string[] = [];
  const keys = Object.keys(route.query);
  const n = Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const k = keys.length && chance(0.7) ? pick(keys) : pick(['x', 'limit', 'offset', '__proto__[polluted]', 'constructor[prototype][x]', 'a[]', 'status', 'include_events', '', 'k'.repeat(500)]);
    const v = pick([...HOSTILE_STRINGS.slice(0, 30), '1', '-1', '0', '1.5', '1e400', '99999999999999999999', 'true', 'yes', '', '%00', '%ZZ', String(2 ** 31), String(2 ** 63)]);
    parts.push(`${enc(k).replace(/%5B/g, '[').replace(/%5D/g, ']')}=${chance(0.85) ? enc(v) : enc(v).replace(/%25/g, '%')}`);
  }
  if (chance(0.1)) parts.push('limit=1&limit=2&limit=3');
  return parts.length ? `?${parts.join('&')}` : '';
}

async function badTokens(userA: string): Promise<string[]> {
  const secret = new TextEncoder().encode(config.jwtSecret);
  const wrong = new TextEncoder().encode('not-the-secret-at-all-0123456789');
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return [
    '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer null', 'Bearer undefined', `Bearer ${'a'.repeat(8000)}`, 'Bearer trp_', `Bearer trp_${'0'.repeat(40)}`,
    `Bearer trp_${uniq('x')}`, 'bearer a.b.c', 'Bearer a.b.c', 'Bearer ....', 'Bearer %00',
    `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: userA, iat: now })}.`,
    `Bearer ${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: userA, iat: now })}.${'A'.repeat(43)}`,
    `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userA).setIssuedAt().setExpirationTime('1h').sign(wrong)}`,
    `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userA).setIssuedAt(now - 7200).setExpirationTime(now - 3600).sign(secret)}`,
    `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userA).setNotBefore(now + 3600).sign(secret)}`,
    `Bearer ${await new SignJWT({ sub: 12345 } as never).setProtectedHeader({ alg: 'HS256' }).sign(secret)}`,
    `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject(userA).sign(new TextEncoder().encode(config.jwtSecret.padEnd(64, 'x')))}`,
  ];
}

/** Whether a body names the objects it acts on (so other projects' ids can go in it). */
const bodyNamesIds = (route: Route) => ((route.body?.required ?? []) as string[]).some((k) => /(_id|Id)$/.test(k));

/**
 * One request that must be rejected. A write is only ever sent with at least one of: a bad token,
 * an id the caller cannot see, or a body that breaks its schema, so any 2xx to it is a finding.
 */
function phase1Request(route: Route, A: Fix, B: Fix, tokens: string[], strangerToken: string): Req {
  const hasIds = route.params.length > 0;
  const hasBody = !!route.body;
  const isRead = route.method === 'get';
  const own = (kind: keyof Fix | undefined) => encodeURIComponent(String(kind === 'agent' && chance(0.3) ? A.agentHandle : (kind && A[kind]) ?? uuid4()));
  const foreign = (kind: keyof Fix | undefined) => encodeURIComponent(String((kind && B[kind]) ?? uuid4()));
  const modes = ['bad-token', 'bad-ids', 'bad-body', 'malformed', 'query', 'foreign-ids', 'foreign-principal', 'stranger'];
  const mode = pick(modes.filter((m) => {
    if (!route.auth) return ['bad-ids', 'query', 'malformed'].includes(m);
    if (m === 'bad-body' || m === 'malformed') return hasBody;
    if (m === 'query') return isRead || hasBody;
    return true;
  }));
  let auth = `Bearer ${chance(0.8) || !A.key ? A.token : A.key}`;
  let urlPath = fillPath(route, (k) => own(k));
  let body: string | undefined;
  let query = '';
  const headers: Record<string, string> = {};
  const validBody = (f: Fix) => JSON.stringify(validValue(route.body!, '', bodyIds(f), false));
  const invalid = () => invalidBody(route.body!, bodyIds(A));
  switch (mode) {
    case 'bad-token':
      auth = pick(tokens);
      if (hasBody) body = chance(0.7) ? validBody(A) : invalid();
      break;
    case 'bad-ids': {
      const which = hasIds ? pick(route.params) : undefined;
      urlPath = route.path.replace(/\{([^}/]+)\}/g, (_, name: string) => {
        if (name !== which && !chance(0.3)) return own(paramKind(route.path, name));
        const v = chance(0.5) ? uuid4() : pick(HOSTILE_IDS);
        return chance(0.7) ? encodeURIComponent(v) : v.replace(/[/?#]/g, '');
      });
      if (hasBody) body = chance(0.5) && hasIds ? validBody(A) : invalid();
      if (!hasIds && !isRead) {
        if (hasBody) body = invalid();
        else auth = pick(tokens);
      }
      break;
    }
    case 'bad-body':
      body = invalid();
      if (chance(0.2)) headers['idempotency-key'] = pick(['x'.repeat(300), uniq('k')]);
      break;
    case 'malformed': {
      const kind = Math.floor(rnd() * 4);
      if (kind === 0 || !route.auth) body = pick(MALFORMED);
      else if (kind === 1) body = `{"a":"${'x'.repeat(config.bodyLimitBytes + 1000)}"}`;
      else if (kind === 2) {
        body = validBody(A);
        headers['content-type'] = pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=utf-16']);
        // A lenient JSON content type must not turn into an accepted write.
        if (headers['content-type'].startsWith('application/json')) body = pick(MALFORMED);
      } else {
        const h = hostileJson();
        body = h.startsWith('{') ? invalid() : h;
      }
      break;
    }
    case 'query':
      query = randomQuery(route);
      if (hasBody) body = invalid();
      else if (!isRead) auth = pick(tokens);
      break;
    case 'foreign-ids':
      // A's token (or key) with B's ids: in the path, or in the body when the path has none.
      if (chance(0.3) && A.key) auth = `Bearer ${A.key}`;
      urlPath = fillPath(route, (k) => foreign(k));
      if (hasBody) body = validBody(B);
      if (!hasIds && !isRead) {
        if (hasBody && !bodyNamesIds(route)) body = invalidBody(route.body!, bodyIds(B));
        if (!hasBody) auth = pick(tokens);
      }
      if (!hasIds && isRead) query = randomQuery(route);
      break;
    case 'foreign-principal':
    case 'stranger':
      // Someone else's token with A's ids (B's user or key, or a user in no project at all).
      auth = mode === 'stranger' ? `Bearer ${strangerToken}` : `Bearer ${chance(0.7) || !B.key ? B.token : B.key}`;
      if (hasBody) body = validBody(A);
      if (!hasIds && !isRead) {
        if (hasBody && !bodyNamesIds(route)) body = invalid();
        if (!hasBody) auth = pick(tokens);
      }
      break;
  }
  if (auth) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  if (route.method === 'get') body = undefined; // fetch sends no body with GET
  else if (route.method === 'delete' && chance(0.3)) {
    body = pick(MALFORMED);
    headers['content-type'] = 'application/json';
  }
  if (route.stream && chance(0.5)) headers['last-event-id'] = pick(['-1', 'abc', '99999999999999999999', '1e3', '-99999999999999999999', '2147483648', '']);
  return { phase: 1, mode, method: route.method.toUpperCase(), path: urlPath + query, headers, body, route };
}

function phase2Request(route: Route, C: Fix): Req | null {
  if (!route.auth) return null;
  const urlPath = fillPath(route, (k) => encodeURIComponent(String((k && C[k]) ?? uuid4())));
  const headers: Record<string, string> = { authorization: `Bearer ${chance(0.85) || !C.key ? C.token : C.key}` };
  let body: string | undefined;
  if (route.body) {
    body = JSON.stringify(validValue(route.body, '', bodyIds(C), true));
    headers['content-type'] = 'application/json';
  }
  // Deletes last (see the ordering in fuzz()); reads get hostile queries.
  const query = route.method === 'get' && chance(0.5) ? randomQuery(route) : '';
  return { phase: 2, mode: 'hostile-valid', method: route.method.toUpperCase(), path: urlPath + query, headers, body, route };
}

interface Outcome {
  status: number | 'timeout' | 'error';
  ms: number;
}

/**
 * Sends the request with node:http, the path exactly as built: fetch (WHATWG URL) would resolve
 * `..` and `%2e%2e` segments on our side, turning "DELETE .../skills/.." into a genuine
 * "DELETE .../agents/<id>". Only what HTTP cannot carry (controls, spaces, non-ASCII) is
 * percent-encoded, as fetch would.
 */
function rawPath(p: string): string {
  return p.replace(/[^\x21-\x7e]/gu, (c) => enc(c));
}

function send(base: string, r: Req, timeoutMs: number): Promise<Outcome> {
  const t0 = Date.now();
  const { hostname, port } = new URL(base);
  return new Promise<Outcome>((resolve) => {
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = http.request({ host: hostname, port, method: r.method, path: rawPath(r.path), headers: r.headers }, (res) => {
      const status = res.statusCode ?? 0;
      // An SSE stream never ends by itself: its status is the answer.
      if ((res.headers['content-type'] ?? '').includes('text/event-stream')) {
        finish({ status, ms: Date.now() - t0 });
        req.destroy();
        return;
      }
      res.resume();
      res.on('end', () => finish({ status, ms: Date.now() - t0 }));
      res.on('error', () => finish({ status: 'error', ms: Date.now() - t0 }));
    });
    const timer = setTimeout(() => {
      finish({ status: 'timeout', ms: Date.now() - t0 });
      req.destroy();
    }, timeoutMs);
    req.on('error', () => finish({ status: 'error', ms: Date.now() - t0 }));
    req.end(r.body);
  });
}

// --- realtime surfaces (not in /openapi.json) ---------------------------------------------------
/**
 * The agent WebSocket and Socket.IO: bad tokens at the upgrade / handshake must be refused, and
 * hostile subscribe arguments (or other projects' ids) from a valid user answered with an error.
 */
async function realtimeProbes(base: string, A: Fix, B: Fix, tokens: string[], n: number) {
  const out = { ws_refused: 0, ws_accepted_bad: 0, ws_valid_ok: 0, io_refused: 0, io_accepted_bad: 0, io_subscribe_refused: 0, io_subscribe_accepted_bad: 0, errors: [] as string[] };
  const wsUrl = base.replace(/^http/, 'ws') + '/ws';
  const wsTry = (auth: string | undefined) => new Promise<'open' | 'refused' | 'error'>((resolve) => {
    const ws = new WebSocket(wsUrl, { headers: auth ? { authorization: auth } : {}, handshakeTimeout: 5000 });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode === 401 ? 'refused' : 'error');
    });
    ws.on('error', () => resolve('error'));
  });
  for (let i = 0; i < n; i++) {
    const tok = pick([...tokens, `Bearer ${A.token}`]); // a user token is not an agent key either
    const r = await wsTry(tok || undefined);
    if (r === 'refused') out.ws_refused++;
    else if (r === 'open') {
      out.ws_accepted_bad++;
      out.errors.push(`/ws accepted ${tok.slice(0, 40)}`);
    } else out.errors.push(`/ws answered neither 101 nor 401 for ${tok.slice(0, 40)}`);
  }
  if (A.key && (await wsTry(`Bearer ${A.key}`)) === 'open') out.ws_valid_ok++;
  const ioTry = (token: unknown) => new Promise<'connected' | 'refused'>((resolve) => {
    const sock = io(base, { auth: { token } as Record<string, unknown>, transports: ['websocket'], reconnection: false, timeout: 5000 });
    sock.once('connect', () => {
      sock.close();
      resolve('connected');
    });
    sock.once('connect_error', () => {
      sock.close();
      resolve('refused');
    });
  });
  for (let i = 0; i < n; i++) {
    const t = pick(tokens).replace(/^Bearer ?/, '');
    const r = await ioTry(pick([t, t, null, 123, { a: 1 }, ['x'], 'x'.repeat(10_000)]));
    if (r === 'refused') out.io_refused++;
    else {
      out.io_accepted_bad++;
      out.errors.push(`Socket.IO accepted a bad token (${String(t).slice(0, 40)})`);
    }
  }
  const sock = io(base, { auth: { token: A.token }, transports: ['websocket'], reconnection: false });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('connect_error', reject);
  });
  try {
    const hostile: unknown[] = [
      { project_id: B.project }, { conversation_id: B.session }, { project_id: uuid4() }, { conversation_id: uuid4() }, { project_id: 'x' }, { project_id: "' OR 1=1" },
      { project_id: A.project, extra: 1 }, { __proto__: { project_id: A.project } }, null, 'string', 42, [A.project], { project_id: { $ne: null } }, { conversation_id: '\u0000' },
      { project_id: JSON.parse(deepArray(2000)) }, { project_id: 'y'.repeat(100_000) },
    ];
    for (let i = 0; i < n; i++) {
      const arg = pick(hostile);
      const ack = await sock.timeout(5000).emitWithAck('subscribe', arg).catch((err: Error) => ({ error: `no ack: ${err.message}` }));
      if (ack && (ack as { ok?: boolean }).ok) {
        out.io_subscribe_accepted_bad++;
        out.errors.push(`Socket.IO subscribe accepted ${JSON.stringify(arg)?.slice(0, 80)}`);
      } else out.io_subscribe_refused++;
    }
  } finally {
    sock.close();
  }
  return out;
}

// --- state snapshots ------------------------------------------------------------------------------
/** No session queued or running, every feature reaction handled, and the same for two reads in a row. */
async function settled(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const busy = (await q((k) => k.raw(`select count(*)::int as n from sessions
      where status in ('queued', 'running') or (trigger_type <> 'api' and reacted_index < next_event_index - 1)`))).rows[0].n as number;
    const state = JSON.stringify(await snapshot());
    if (busy === 0 && state === last) return;
    if (Date.now() > deadline) throw new Error(`fixtures did not settle within ${timeoutMs / 1000}s (${busy} sessions busy)`);
    last = state;
    await sleep(1000);
  }
}

/**
 * Every table: row count and a digest of its rows, bookkeeping aside: agent_api_keys.last_used_at
 * (auth) and hosts.heartbeat_at (a worker host's heartbeat, written every few seconds).
 */
async function snapshot(): Promise<Record<string, string>> {
  const tables: string[] = (await q((k) => k.raw(`select tablename from pg_tables where schemaname = 'public' and tablename not like 'knex_%' order by 1`))).rows.map((r: any) => r.tablename);
  const out: Record<string, string> = {};
  for (const t of tables) {
    const r = await q((k) => k.raw(`select count(*)::int as n, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from (select to_jsonb(t) - 'last_used_at' - 'heartbeat_at' as x from "${t}" t) s`));
    out[t] = `${r.rows[0].n}:${r.rows[0].h}`;
  }
  return out;
}

/** Rows of a few tables by id, so a changed table can be reported down to its rows and columns. */
const DETAILED = ['sandboxes', 'sessions', 'agents', 'tasks'];
async function rowsById(): Promise<Record<string, Map<string, Record<string, unknown>>>> {
  const out: Record<string, Map<string, Record<string, unknown>>> = {};
  for (const t of DETAILED) {
    const rows = (await q((k) => k.raw(`select to_jsonb(t) - 'last_used_at' - 'heartbeat_at' as x from "${t}" t`))).rows as Array<{ x: Record<string, unknown> }>;
    out[t] = new Map(rows.map((r) => [String(r.x.id), r.x]));
  }
  return out;
}

/** Which rows of the detailed tables differ, and in which columns (for the report). */
function rowChanges(before: Awaited<ReturnType<typeof rowsById>>, after: Awaited<ReturnType<typeof rowsById>>): string[] {
  const out: string[] = [];
  for (const t of DETAILED) {
    for (const id of new Set([...before[t].keys(), ...after[t].keys()])) {
      const a = before[t].get(id);
      const b = after[t].get(id);
      if (!a || !b) { out.push(`${t} ${id}: ${a ? 'deleted' : 'inserted'}`); continue; }
      const cols = Object.keys({ ...a, ...b }).filter((c) => JSON.stringify(a[c]) !== JSON.stringify(b[c]));
      if (cols.length) out.push(`${t} ${id}: ${cols.map((c) => `${c} ${JSON.stringify(a[c])} -> ${JSON.stringify(b[c])}`).join(', ')}`);
    }
  }
  return out.slice(0, 20);
}

async function apiView(base: string, f: Fix): Promise<string> {
  const P = `/api/v1/projects/${f.project}`;
  const parts = await Promise.all([
    call(base, 'GET', `${P}/agents`, { token: f.token }),
    call(base, 'GET', `${P}/agents/${f.agent}`, { token: f.token }),
    call(base, 'GET', `/api/sessions?project_id=${f.project}`, { token: f.token }),
    call(base, 'GET', `${P}/members`, { token: f.token }),
  ]);
  return JSON.stringify(parts.map((p) => [p.status, p.body]));
}

// --- the scenario -----------------------------------------------------------------------------------
export async function fuzz(c: Cluster, opts: { requests: number; timeBudgetMs: number; concurrency?: number }): Promise<FaultResult> {
  const r = emptyResult(`Fuzz every route (${opts.requests} hostile requests)`);
  const t0 = Date.now();
  const api = await c.startApi();
  // Containers belong to workers: sandbox creation, pause and the rest are commands a worker acks.
  await c.ensureWorkers(1);
  try {
    const base = c.url;
    const spec = (await call(base, 'GET', '/openapi.json')).body;
    const routes: Route[] = [];
    for (const [p, ops] of Object.entries<any>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        const params = (op.parameters ?? []).filter((x: any) => x.in === 'path').map((x: any) => x.name);
        const query = Object.fromEntries((op.parameters ?? []).filter((x: any) => x.in === 'query').map((x: any) => [x.name, x.schema]));
        routes.push({
          method, path: p, params, query, body: op.requestBody?.content?.['application/json']?.schema, auth: !(Array.isArray(op.security) && op.security.length === 0),
          stream: !!op.responses?.['200']?.content?.['text/event-stream'] || p.includes('debug/events'),
        });
      }
    }
    const A = await fixtures(base, 'A');
    const B = await fixtures(base, 'B');
    const C = await fixtures(base, 'C');
    const stranger = await userToken(uniq('stranger'));
    const tokens = await badTokens(A.user);
    // The fixtures' sessions run on the worker (a chat reply, a task's hosted session): let that
    // background work finish, so the snapshot compares what the hostile requests did, not it.
    await settled();
    const before = await snapshot();
    const rowsBefore = await rowsById();
    const viewBefore = await apiView(base, A);
    const viewBeforeB = await apiView(base, B);

    const byStatus: Record<string, number> = {};
    const byMode: Record<string, Record<string, number>> = {};
    const serverErrors: string[] = [];
    const serverErrorKinds = new Map<string, { n: number; example: string }>();
    const accepted: string[] = [];
    const hung: string[] = [];
    const perRoute = new Map<string, number>();
    let sent = 0;
    let slowest = { ms: 0, req: '' };
    const describe = (x: Req) => `${x.mode} ${x.method} ${x.path.slice(0, 160)}${x.body ? ` body[${x.body.length}]=${x.body.slice(0, 100)}` : ''}`;
    // Each phase has a time budget of its own (phase 1 most of it), so a slow machine sends fewer
    // requests but never skips phase 2 (the accepted writes, deletes last).
    const phase1 = Math.round(opts.requests * 0.8);
    const runPhase = async (gen: (i: number) => Req | null, n: number, concurrency: number, budgetMs: number) => {
      const deadline = Date.now() + budgetMs;
      let i = 0;
      const worker = async () => {
        while (i < n && Date.now() < deadline) {
          const req = gen(i++);
          if (!req) continue;
          const o = await send(base, req, 15_000);
          sent++;
          const key = String(o.status);
          byStatus[key] = (byStatus[key] ?? 0) + 1;
          (byMode[req.mode] ??= {})[key] = (byMode[req.mode][key] ?? 0) + 1;
          const rk = `${req.method} ${req.route.path}`;
          perRoute.set(rk, (perRoute.get(rk) ?? 0) + 1);
          if (o.ms > slowest.ms) slowest = { ms: o.ms, req: describe(req) };
          if (typeof o.status === 'number' && o.status >= 500) {
            serverErrors.push(`${o.status} ${describe(req)}`);
            const kind = `${o.status} ${req.method} ${req.route.path} (${req.phase === 1 ? req.mode : 'accepted-shape'})`;
            const k = serverErrorKinds.get(kind) ?? { n: 0, example: describe(req) };
            k.n++;
            serverErrorKinds.set(kind, k);
          }
          if (o.status === 'timeout' || o.status === 'error') hung.push(`${o.status} ${describe(req)}`);
          if (req.phase === 1 && typeof o.status === 'number' && o.status < 300 && req.method !== 'GET') accepted.push(`${o.status} ${describe(req)}`);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    };
    await runPhase((i) => phase1Request(routes[i % routes.length], A, B, tokens, stranger), phase1, opts.concurrency ?? 12, opts.timeBudgetMs * 0.7);
    const phase1Sent = sent;
    const realtime = await realtimeProbes(base, A, B, tokens, Math.max(20, Math.round(opts.requests / 60)));

    const after = await snapshot();
    const changed = Object.keys({ ...before, ...after }).filter((t) => before[t] !== after[t]);
    const changedRows = changed.length ? rowChanges(rowsBefore, await rowsById()) : [];
    const viewAfter = await apiView(base, A);
    const viewAfterB = await apiView(base, B);

    // Phase 2: schema-valid hostile content in C's own project; deletes last so ids stay valid.
    const writes = routes.filter((x) => x.method !== 'delete');
    const deletes = routes.filter((x) => x.method === 'delete');
    const n2 = opts.requests - phase1;
    const phase2Routes = new Set<string>();
    const seen2 = (req: Req | null) => {
      if (req) phase2Routes.add(`${req.method} ${req.route.path}`);
      return req;
    };
    await runPhase((i) => seen2(phase2Request(writes[i % writes.length], C)), n2 - deletes.length, 4, Math.max(60_000, opts.timeBudgetMs * 0.3));
    // Each delete once, whatever the time (a handful of requests).
    await runPhase((i) => seen2(phase2Request(deletes[i], C)), deletes.length, 4, 10 * 60_000);
    const phase2Missed = routes.filter((x) => x.auth && !phase2Routes.has(`${x.method.toUpperCase()} ${x.path}`)).map((x) => `${x.method.toUpperCase()} ${x.path}`);

    const healthy = await call(base, 'GET', '/healthz', { timeoutMs: 5000 }).then((x) => x.status === 200, () => false);
    await sleep(300);
    const logFile = fs.readdirSync(LOG_DIR).filter((f) => f.includes(`api-${c.port}`)).map((f) => path.join(LOG_DIR, f))[0];
    const errorLines = logFile ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => /"level":(50|60)/.test(l)) : [];

    r.runs = 1;
    r.affected = 0;
    r.sessions = 0;
    r.affectedLabel = `${sent} requests, ${realtime.ws_refused + realtime.ws_accepted_bad + realtime.io_refused + realtime.io_accepted_bad + realtime.io_subscribe_refused + realtime.io_subscribe_accepted_bad} ws/io probes`;
    if (serverErrors.length) {
      r.problems.push(`${serverErrors.length} response(s) 5xx; causes in the api log:`, ...Object.entries(summarizeErrors(errorLines, false)).sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${k} x${n}`));
      r.problems.push('  by route:', ...[...serverErrorKinds].sort((a, b) => b[1].n - a[1].n).map(([k, v]) => `  ${k} x${v.n}`).slice(0, 12));
    }
    if (hung.length) r.problems.push(`${hung.length} request(s) without an answer in 15 s:`, ...dedupe(hung).slice(0, 10));
    if (accepted.length) r.problems.push(`${accepted.length} hostile write(s) accepted (2xx):`, ...dedupe(accepted).slice(0, 15));
    if (realtime.errors.length) r.problems.push(...dedupe(realtime.errors).slice(0, 10));
    if (changed.length) r.problems.push(`rows changed by rejected requests in: ${changed.join(", ")}${changedRows.length ? ` (${changedRows.join("; ")})` : ""}`);
    if (viewBefore !== viewAfter || viewBeforeB !== viewAfterB) r.problems.push("a project's agents/sessions/members (as the API shows them) changed");
    if (!api.alive() || !healthy) r.problems.push(`the api process ${api.alive() ? 'stopped answering /healthz' : `died (exit ${api.child.exitCode})`}`);
    if (errorLines.length) r.problems.push(`${errorLines.length} error line(s) in the api log, e.g. ${errorLines[0].slice(0, 400)}`);
    r.ok = !realtime.errors.length && !serverErrors.length && !hung.length && !accepted.length && !changed.length && viewBefore === viewAfter && viewBeforeB === viewAfterB && api.alive() && healthy;
    r.details = {
      seed: initialSeed, requests: sent, phase1_rejected_requests: phase1Sent, phase2_hostile_valid_requests: sent - phase1Sent, routes: routes.length,
      routes_hit: perRoute.size, by_status: byStatus, by_mode: byMode, server_errors: serverErrors.length, no_answer: hung.length,
      hostile_writes_accepted: accepted.length, realtime, tables_changed: changed, rows_changed: changedRows, api_alive: api.alive() && healthy, api_error_log_lines: errorLines.length,
      server_error_kinds: Object.fromEntries([...serverErrorKinds].map(([k, v]) => [k, v])), api_errors_logged: summarizeErrors(errorLines),
      slowest_ms: slowest, fixture_notes: [...A.notes, ...B.notes, ...C.notes],
    };
    if (perRoute.size < routes.length) r.problems.push(`only ${perRoute.size} of ${routes.length} routes were hit (time budget?)`);
    if (phase2Missed.length) r.problems.push(`phase 2 (accepted shapes) did not reach ${phase2Missed.length} route(s) in its time budget, e.g. ${phase2Missed.slice(0, 5).join(', ')}`);
    r.ok &&= perRoute.size >= routes.length && !phase2Missed.length;
  } finally {
    r.seconds = (Date.now() - t0) / 1000;
  }
  return r;
}

/** The api's error log lines, grouped by what went wrong. */
function summarizeErrors(lines: string[], withPath = true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    try {
      const d = JSON.parse(l);
      const m = String(d.err?.message ?? d.msg ?? '');
      const cause = `${d.err?.type ?? ''} ${m.includes(' - ') ? m.slice(m.lastIndexOf(' - ') + 3) : m}`.slice(0, 160);
      const k = withPath ? `${String(d.path ?? '').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 80)}: ${cause}` : cause;
      out[k] = (out[k] ?? 0) + 1;
    } catch {
      /* not JSON */
    }
  }
  return out;
}

function dedupe(xs: string[]): string[] {
  const seen = new Map<string, number>();
  for (const x of xs) {
    const k = x.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 140);
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].map(([k, n]) => (n > 1 ? `${k} (x${n})` : k));
}

