/**
 * Rate limits (issue 12): every limit exceeded on a real api (Koa app, Redis counters) built with
 * small numbers and a short window, so each one is seen to answer 429 with Retry-After and the
 * envelope, to leave other principals and addresses alone, and to recover. A second part starts
 * two real api processes from env (the config path) sharing Redis, to show the counters hold
 * across replicas.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/http/app.js';
import { createRateLimits } from '../src/http/rate-limit.js';
import type { RateLimitSettings } from '../src/config.js';
import { installDefaultPorts } from '../src/wiring.js';
import { call, newAgent, newProject, newUser, sleep } from './support/harness.js';
import { freePort, startApi, type Proc } from './support/processes.js';
import { request } from './support/http.js';

interface Reply {
  status: number;
  body: any;
  headers: http.IncomingHttpHeaders;
}

/** One request from a chosen loopback source address (127.0.0.2 is another client to the server). */
function from(localAddress: string, base: string, method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  const u = new URL(base + path);
  const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, localAddress,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}),
        ...opts.headers,
      },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, body, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

function expect429(r: Reply): number {
  expect(r.status, JSON.stringify(r.body)).to.equal(429);
  expect(r.body).to.have.property('error').that.matches(/Too many requests/);
  expect(Object.keys(r.body)).to.deep.equal(['error']);
  const retryAfter = Number(r.headers['retry-after']);
  expect(retryAfter).to.be.within(1, 3);
  return retryAfter;
}

const WINDOW = 2;
type Settings = RateLimitSettings;
const OFF: Settings = { perMinute: 0, perIpPerMinute: 0, authFailuresPerMinute: 0, sessionsPerMinute: 0, pairingPerMinute: 0 };

/** A real api (the app, on its own port) with these limits, counted under a fresh Redis prefix. */
async function limitedApi(settings: Partial<Settings>): Promise<{ base: string; close(): Promise<void> }> {
  installDefaultPorts();
  const prefix = `${process.env.TROUPE_REDIS_PREFIX}-rl-${crypto.randomBytes(3).toString('hex')}`;
  const app = createApp({ rateLimits: createRateLimits({ ...OFF, ...settings }, { prefix, windowSeconds: WINDOW }) });
  const server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('Rate limits', function () {
  this.timeout(60_000);

  it('per principal: the limit answers 429 with Retry-After and the envelope, another user is unaffected, and it recovers', async () => {
    const api = await limitedApi({ perMinute: 3 });
    try {
      const [a, b] = [await newUser(), await newUser()];
      for (let i = 0; i < 3; i++) expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: a.token })).status).to.equal(200);
      const retryAfter = expect429(await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: a.token }));
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: b.token })).status).to.equal(200);
      // Health, metrics and OpenAPI are never limited.
      expect((await from('127.0.0.1', api.base, 'GET', '/healthz')).status).to.equal(200);
      await sleep(retryAfter * 1000 + 100);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: a.token })).status).to.equal(200);
    } finally {
      await api.close();
    }
  });

  it('per IP: every route counts (unknown paths and missing tokens too), another address is unaffected, X-Forwarded-For is not believed, health is exempt', async () => {
    const api = await limitedApi({ perIpPerMinute: 4 });
    try {
      const u = await newUser();
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: u.token })).status).to.equal(200);
      expect((await from('127.0.0.1', api.base, 'GET', '/no/such/path')).status).to.equal(404);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects')).status).to.equal(401);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: (await newUser()).token })).status).to.equal(200);
      // A fifth request from the address is refused, whoever makes it and whatever it claims to relay.
      const retryAfter = expect429(await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: (await newUser()).token, headers: { 'x-forwarded-for': '10.1.2.3' } }));
      expect((await from('127.0.0.2', api.base, 'GET', '/api/v1/projects', { token: u.token })).status).to.equal(200);
      for (const path of ['/healthz', '/readyz', '/openapi.json', '/metrics']) {
        expect((await from('127.0.0.1', api.base, 'GET', path)).status, path).to.be.oneOf([200, 503]);
      }
      await sleep(retryAfter * 1000 + 100);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: u.token })).status).to.equal(200);
    } finally {
      await api.close();
    }
  });

  it('authentication failures per IP: bad tokens are 401 until the limit, then the address is refused (even a good token) while others are not; it recovers', async () => {
    const api = await limitedApi({ authFailuresPerMinute: 2 });
    try {
      const u = await newUser();
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: 'trp_guess1' })).status).to.equal(401);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: 'not.a.jwt' })).status).to.equal(401);
      // A missing token is not a guess: still a plain 401, and it does not count.
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects')).status).to.equal(401);
      expect429(await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: 'trp_guess3' }));
      // Refused before the token is looked at: a right guess is not told apart from a wrong one.
      const retryAfter = expect429(await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: u.token }));
      expect((await from('127.0.0.2', api.base, 'GET', '/api/v1/projects', { token: u.token })).status).to.equal(200);
      await sleep(retryAfter * 1000 + 100);
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/projects', { token: u.token })).status).to.equal(200);
    } finally {
      await api.close();
    }
  });

  it('session creation per principal: every creating route counts (sessions, chats), other routes and other users are not affected; it recovers', async () => {
    const api = await limitedApi({ sessionsPerMinute: 2 });
    try {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token);
      const other = await newProject();
      const otherAgent = await newAgent(other.projectId, other.owner.token);
      const create = (token: string, agentId: string) => from('127.0.0.1', api.base, 'POST', '/api/v1/sessions', { token, body: { agent_id: agentId } });
      expect((await create(owner.token, agent.id)).status).to.equal(201);
      expect((await create(owner.token, agent.id)).status).to.equal(201);
      expect429(await create(owner.token, agent.id));
      // Chats create conversations: the same limit.
      expect429(await from('127.0.0.1', api.base, 'POST', `/api/v1/projects/${projectId}/agents/${agent.id}/chat-sessions`, { token: owner.token, body: { message: 'hi' } }));
      const before = Number((await call('GET', `/api/v1/projects/${projectId}/agents/${agent.id}/conversations`, { token: owner.token })).body.total);
      expect(before).to.equal(2); // nothing was created by the refused requests
      // Reading is not creating, and another user has a budget of their own.
      const list = await from('127.0.0.1', api.base, 'GET', `/api/v1/projects/${projectId}/agents/${agent.id}/conversations`, { token: owner.token });
      expect(list.status).to.equal(200);
      expect((await create(other.owner.token, otherAgent.id)).status).to.equal(201);
      await sleep(WINDOW * 1000 + 100);
      expect((await create(owner.token, agent.id)).status).to.equal(201);
    } finally {
      await api.close();
    }
  });

  it('pairing-code use (POST /api/v1/connections) per agent and per IP; it recovers', async () => {
    const api = await limitedApi({ pairingPerMinute: 2 });
    try {
      const keyOf = async () => {
        const { owner, projectId } = await newProject();
        const a = await newAgent(projectId, owner.token, { kind: 'external' });
        return (await call('POST', `/api/v1/projects/${projectId}/agents/${a.id}/api-keys`, { token: owner.token, body: {} })).body.key as string;
      };
      const [k1, k2] = [await keyOf(), await keyOf()];
      const redeem = (ip: string, key: string) => from(ip, api.base, 'POST', '/api/v1/connections', { token: key, body: { pairingCode: 'ZZZZZZZZ' } });
      expect((await redeem('127.0.0.1', k1)).status).to.equal(400);
      expect((await redeem('127.0.0.1', k1)).status).to.equal(400);
      expect429(await redeem('127.0.0.1', k1)); // the agent's guesses are used up
      expect429(await redeem('127.0.0.2', k1)); // from any address
      expect429(await redeem('127.0.0.1', k2)); // and the address's, for any agent
      expect((await redeem('127.0.0.3', k2)).status).to.equal(400); // another agent elsewhere is unaffected
      // Other hub routes are not pairing.
      expect((await from('127.0.0.1', api.base, 'GET', '/api/v1/connections', { token: k1 })).status).to.equal(200);
      await sleep(WINDOW * 1000 + 100);
      expect((await redeem('127.0.0.1', k1)).status).to.equal(400);
    } finally {
      await api.close();
    }
  });

  describe('configured from env, across two api replicas', function () {
    this.timeout(120_000);
    let apis: Proc[] = [];
    const bases: string[] = [];
    before(async () => {
      const env = {
        TROUPE_REDIS_PREFIX: `${process.env.TROUPE_REDIS_PREFIX}-replicas-${crypto.randomBytes(3).toString('hex')}`,
        HOST: '127.0.0.1',
        TROUPE_RATE_LIMIT_PER_MINUTE: '6',
        TROUPE_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '0',
      };
      for (let i = 0; i < 2; i++) {
        const port = await freePort();
        apis.push(await startApi({ ...env, PORT: String(port), TROUPE_PUBLIC_URL: `http://127.0.0.1:${port}` }));
        bases.push(`http://127.0.0.1:${port}`);
      }
    });
    after(async () => {
      await Promise.all(apis.map((p) => p.stop()));
      apis = [];
    });

    it('a principal gets the limit once, not once per replica', async () => {
      const u = await newUser();
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await request(bases[i % 2], 'GET', '/api/v1/projects', { token: u.token })).status);
      expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 200, 429, 429]);
      const r = await request(bases[0], 'GET', '/api/v1/projects', { token: u.token });
      expect(r.status).to.equal(429);
      expect(Number(r.headers.get('retry-after'))).to.be.within(1, 60);
      expect(r.body.error).to.match(/at most 6 requests by one user or agent per minute/);
      expect((await request(bases[1], 'GET', '/api/v1/projects', { token: (await newUser()).token })).status).to.equal(200);
    });
  });
});
