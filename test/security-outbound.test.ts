/**
 * Issue 12, finding 4 (SSRF): every server-side request passes one outbound guard that blocks
 * loopback, private, link-local and metadata addresses unless TROUPE_OUTBOUND_ALLOW lists them.
 *
 * The rest of the suite allows 127.0.0.1 (test/support/env.ts) for its fake servers; here the
 * guard runs WITHOUT that allowance: a guard built in-process with an empty allow list, and a
 * real api + worker started as separate processes whose TROUPE_OUTBOUND_ALLOW names only the few
 * loopback ports a test wants reachable. Every listener is on 127.0.0.1; no other address is used.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { loadConfig, ConfigError } from '../src/config.js';
import { blockedRange, parseOutboundAllow, verdict, type OutboundPolicy, type OutboundPurpose } from '../src/lib/outbound-rules.js';
import { blockedCause, OutboundBlockedError, OutboundGuard } from '../src/lib/outbound.js';
import { SKILL_FETCH_ERROR } from '../src/services/agent-extras.js';
import { db } from '../src/db/knex.js';
import { waitFor } from './support/harness.js';
import { freePort, startApi, startWorker, type Proc } from './support/processes.js';
import { startFakeOpenAI, type FakeServer } from './support/fake-model-servers.js';

interface Listener {
  port: number;
  url: string;
  /** TCP connections accepted: 0 proves the guard sent nothing, not even a handshake. */
  connections: number;
  close(): Promise<void>;
}

async function listen(handler: http.RequestListener, port = 0): Promise<Listener> {
  const server = http.createServer(handler);
  const l = { port: 0, url: '', connections: 0, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
  server.on('connection', () => l.connections++);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  l.port = (server.address() as AddressInfo).port;
  l.url = `http://127.0.0.1:${l.port}`;
  return l;
}

const SECRET_PAGE = 'TOP-SECRET-LOOPBACK-ONLY-PAGE';
const strict: OutboundPolicy = { allow: [], loopbackModels: false };
const dest = (address: string, purpose: OutboundPurpose = 'webhook', port = 80, hostname = address) => ({ hostname, address, port, purpose });

describe('security: the outbound guard (issue 12, finding 4)', function () {
  this.timeout(120_000);

  describe('rules', () => {
    it('blocks loopback, private, CGNAT, ULA, link-local, metadata, unspecified, multicast, mapped and NAT64 forms; passes public unicast', () => {
      const blocked = [
        '127.0.0.1', '127.8.9.10', '::1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.255',
        'fc00::1', 'fd12:3456::1', '169.254.1.1', 'fe80::1', '169.254.169.254', 'fd00:ec2::254', '0.0.0.0', '::', '224.0.0.1',
        'ff02::1', '255.255.255.255', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a00:1', '64:ff9b::7f00:1',
      ];
      for (const a of blocked) expect(blockedRange(a), a).to.be.a('string');
      expect(blockedRange('169.254.169.254')).to.equal('cloud metadata');
      expect(blockedRange('fd00:ec2::254')).to.equal('cloud metadata');
      for (const a of ['8.8.8.8', '1.1.1.1', '140.82.112.3', '2606:4700::1111', '64:ff9b::808:808']) expect(blockedRange(a), a).to.equal(null);
    });

    it('TROUPE_OUTBOUND_ALLOW takes hosts, host:port, addresses, [v6]:port and CIDRs; bad entries stop start-up with a clear message', () => {
      const problems: string[] = [];
      const rules = parseOutboundAllow('127.0.0.1:11434, 10.0.0.0/8 ollama.internal, models.lan:8000 [::1]:8080 fd00::/8 192.168.1.7', problems);
      expect(problems).to.deep.equal([]);
      expect(rules.map((r) => [r.kind, r.port])).to.deep.equal([['cidr', 11434], ['cidr', undefined], ['host', undefined], ['host', 8000], ['cidr', 8080], ['cidr', undefined], ['cidr', undefined]]);
      const policy: OutboundPolicy = { allow: rules, loopbackModels: false };
      expect(verdict(policy, dest('127.0.0.1', 'model', 11434))).to.equal(null);
      expect(verdict(policy, dest('127.0.0.1', 'model', 6379))).to.equal('loopback'); // another port of the same address
      expect(verdict(policy, dest('10.9.8.7', 'webhook', 443))).to.equal(null);
      expect(verdict(policy, dest('10.9.8.7', 'webhook', 443, 'ollama.internal'))).to.equal(null);
      expect(verdict(policy, dest('172.20.0.5', 'mcp', 80, 'ollama.internal'))).to.equal(null); // a listed name, wherever it resolves
      expect(verdict(policy, dest('172.20.0.5', 'webhook', 80, 'models.lan'))).to.equal('private'); // listed only with :8000
      expect(verdict(policy, dest('::1', 'webhook', 8080))).to.equal(null);
      expect(verdict(policy, dest('::ffff:10.0.0.1'))).to.equal(null); // mapped form of an allowed address
      expect(verdict(policy, dest('192.168.1.8'))).to.equal('private');

      for (const bad of ['not a host!', '10.0.0.0/99', 'example.com:99999', 'http://x/']) {
        const p: string[] = [];
        parseOutboundAllow(bad, p);
        expect(p, bad).to.have.length(1);
      }
      expect(() => loadConfig({ TROUPE_OUTBOUND_ALLOW: '127.0.0.1, not_a/cidr' })).to.throw(ConfigError, /TROUPE_OUTBOUND_ALLOW entry "not_a\/cidr"/);
    });

    it('a metadata address opens only when listed exactly; loopback model servers only in loopback-only dev mode, and only for models', () => {
      const broad: OutboundPolicy = { allow: parseOutboundAllow('0.0.0.0/0,::/0,169.254.0.0/16'), loopbackModels: false };
      expect(verdict(broad, dest('169.254.169.254'))).to.equal('cloud metadata');
      expect(verdict(broad, dest('fd00:ec2::254'))).to.equal('cloud metadata');
      expect(verdict(broad, dest('10.0.0.1'))).to.equal(null);
      expect(verdict({ allow: parseOutboundAllow('169.254.169.254'), loopbackModels: false }, dest('169.254.169.254'))).to.equal(null);

      const dev: OutboundPolicy = { allow: [], loopbackModels: true };
      expect(verdict(dev, dest('127.0.0.1', 'model', 11434, 'localhost'))).to.equal(null);
      expect(verdict(dev, dest('::1', 'model', 11434, 'localhost'))).to.equal(null);
      expect(verdict(dev, dest('10.0.0.1', 'model'))).to.equal('private');
      expect(verdict(dev, dest('127.0.0.1', 'webhook'))).to.equal('loopback');
      expect(verdict(dev, dest('127.0.0.1', 'skill'))).to.equal('loopback');
      expect(verdict(strict, dest('127.0.0.1', 'model'))).to.equal('loopback');
    });
  });

  describe('guarded fetch (in-process guard, empty allow list)', () => {
    let secret: Listener;
    before(async () => {
      secret = await listen((_req, res) => res.end(SECRET_PAGE));
    });
    after(() => secret.close());

    it('refuses loopback by address, by name and by every spelling of it, without opening a connection', async () => {
      const guard = new OutboundGuard(strict);
      try {
        for (const url of [
          `${secret.url}/`, `http://localhost:${secret.port}/`, `http://[::ffff:127.0.0.1]:${secret.port}/`,
          `http://0x7f.1:${secret.port}/`, `http://2130706433:${secret.port}/`, `http://127.1:${secret.port}/`,
        ]) {
          const err = await guard.fetch('webhook')(url).then(() => null, (e: unknown) => e);
          expect(blockedCause(err), url).to.be.instanceOf(OutboundBlockedError);
        }
        expect(secret.connections).to.equal(0);
      } finally {
        await guard.close();
      }
    });

    it('checks what a name resolves to on every connection (DNS rebinding), and every redirect hop', async () => {
      // A rebinding attacker's DNS: a public answer for the check, loopback for the connection.
      let lookups = 0;
      const guard = new OutboundGuard(strict, async () => [{ address: lookups++ === 0 ? '140.82.112.3' : '127.0.0.1', family: 4 }]);
      try {
        await guard.check(`http://rebind.example:${secret.port}/`, 'skill');
        const err = await guard.fetch('skill')(`http://rebind.example:${secret.port}/`).then(() => null, (e: unknown) => e);
        expect(blockedCause(err)).to.be.instanceOf(OutboundBlockedError);
        expect(lookups).to.equal(2);
        expect(secret.connections).to.equal(0);
      } finally {
        await guard.close();
      }

      const hop = await listen((_req, res) => (res.writeHead(302, { location: `${secret.url}/` }), res.end()));
      const allowHop = new OutboundGuard({ allow: parseOutboundAllow(`127.0.0.1:${hop.port}`), loopbackModels: false });
      try {
        const err = await allowHop.fetch('model')(`${hop.url}/`).then(() => null, (e: unknown) => e);
        expect(hop.connections).to.equal(1);
        expect(blockedCause(err)).to.be.instanceOf(OutboundBlockedError);
        expect(secret.connections).to.equal(0);
      } finally {
        await allowHop.close();
        await hop.close();
      }
    });

    it('lets through exactly what is allowed: a listed address:port, and loopback model servers in dev mode', async () => {
      const listed = new OutboundGuard({ allow: parseOutboundAllow(`127.0.0.1:${secret.port}`), loopbackModels: false });
      const dev = new OutboundGuard({ allow: [], loopbackModels: true });
      try {
        expect(await (await listed.fetch('webhook')(`${secret.url}/`)).text()).to.equal(SECRET_PAGE);
        expect(await (await dev.fetch('model')(`http://localhost:${secret.port}/`)).text()).to.equal(SECRET_PAGE);
        const err = await dev.fetch('webhook')(`${secret.url}/`).then(() => null, (e: unknown) => e);
        expect(blockedCause(err)).to.be.instanceOf(OutboundBlockedError);
      } finally {
        await listed.close();
        await dev.close();
      }
    });
  });

  describe('the real stack without the allowance (separate api and worker processes)', () => {
    const prefix = `${process.env.TROUPE_REDIS_PREFIX}-ssrf`;
    const instance = `${process.env.TROUPE_INSTANCE}-ssrf`;
    const jwtSecret = crypto.randomBytes(32).toString('hex');
    let api: Proc | undefined;
    let worker: Proc | undefined;
    let apiUrl = '';
    let apiPort = 0;
    let token = '';
    let closedPort = 0;
    const listeners: Listener[] = [];
    let secret: Listener, files: Listener, redirector: Listener, big: Listener, hook: Listener, mcp: Listener;
    let fake: FakeServer;

    const req = async (method: string, path: string, body?: unknown, auth = token) => {
      const res = await fetch(apiUrl + path, {
        method, headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
    };
    const project = async () => (await req('POST', '/api/v1/projects', { name: `ssrf-${crypto.randomBytes(3).toString('hex')}` })).body.id as string;
    const agent = async (projectId: string, body: Record<string, unknown> = {}) => {
      const r = await req('POST', `/api/v1/projects/${projectId}/agents`, {
        name: `a-${crypto.randomBytes(3).toString('hex')}`, llm_provider: 'scripted', sandbox: { image: 'troupe-sandbox-minimal:latest' }, ...body,
      });
      expect(r.status, r.text).to.equal(201);
      return r.body;
    };
    const addSkill = async (projectId: string, agentId: string, sourceUrl: string) =>
      req('POST', `/api/v1/projects/${projectId}/agents/${agentId}/skills`, { skill_name: `s-${crypto.randomBytes(3).toString('hex')}`, skill_source: 'github_url', source_url: sourceUrl });

    before(async () => {
      secret = await listen((_req, res) => res.end(SECRET_PAGE));
      files = await listen((r, res) => {
        if (r.url === '/ok.md') return res.end('# A fine skill\n');
        res.statusCode = 404;
        res.end('not found');
      });
      redirector = await listen((r, res) => {
        const to: Record<string, string> = {
          '/to-secret': `${secret.url}/`,
          '/to-secret-by-name': `http://localhost:${secret.port}/`,
          '/to-api-metrics': `http://127.0.0.1:${apiPort}/metrics`,
          '/to-other-host': 'http://evil.invalid/',
          '/loop': '/loop',
          '/to-ok': `${files.url}/ok.md`,
        };
        res.writeHead(302, { location: to[r.url ?? ''] ?? '/loop' });
        res.end();
      });
      big = await listen((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/markdown' }); // chunked: no content-length to trust
        const chunk = Buffer.alloc(64 * 1024, 'x');
        for (let i = 0; i < 6; i++) res.write(chunk);
        res.end();
      });
      hook = await listen((_req, res) => res.end('ok'));
      mcp = await listen((_req, res) => ((res.statusCode = 500), res.end()));
      listeners.push(secret, files, redirector, big, hook, mcp);
      fake = await startFakeOpenAI();
      closedPort = await freePort();
      apiPort = await freePort();
      apiUrl = `http://127.0.0.1:${apiPort}`;

      const env: Record<string, string> = {
        // Only these loopback ports are reachable; the secret page, the hook receiver, the fake model
        // server, the MCP server and the api itself are not.
        TROUPE_OUTBOUND_ALLOW: [files.port, redirector.port, big.port, closedPort].map((p) => `127.0.0.1:${p}`).join(','),
        TROUPE_SKILL_HOSTS: '127.0.0.1,localhost,github.com,raw.githubusercontent.com',
        TROUPE_REDIS_PREFIX: prefix,
        TROUPE_INSTANCE: instance,
        TROUPE_JWT_SECRET: jwtSecret,
        TROUPE_SECRET_KEY: crypto.randomBytes(32).toString('hex'),
        TROUPE_POOL_SIZE: '0',
        TROUPE_WEBHOOK_BACKOFF_MS: '100',
        TROUPE_ADMIN_USERS: 'nobody',
        PORT: String(apiPort),
      };
      // The api listens on loopback; the worker says HOST=0.0.0.0 (it listens on nothing), so its
      // loopback-only dev mode is off and a loopback model server is refused like any private one.
      [api, worker] = await Promise.all([startApi({ ...env, HOST: '127.0.0.1' }), startWorker({ ...env, HOST: '0.0.0.0' })]);
      token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`ssrf-${crypto.randomBytes(3).toString('hex')}`)
        .setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(jwtSecret));
    });

    after(async () => {
      for (const p of [api, worker]) {
        if (!p) continue;
        p.child.kill('SIGTERM');
        await Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]);
      }
      const { sandboxDriver } = await import('../src/runtime/sandbox/index.js');
      const driver = sandboxDriver();
      for (const c of await driver.list({ instance })) {
        if (c.state === 'paused') await driver.unpause(c.id).catch(() => {});
        await driver.remove(c.id).catch(() => {});
      }
      await Promise.all(listeners.map((l) => l.close()));
      await fake?.close();
    });

    it('a skill URL pointing at a loopback-only page is refused, and its body never comes back', async () => {
      const projectId = await project();
      const a = await agent(projectId);
      for (const url of [`${secret.url}/`, `http://localhost:${secret.port}/SKILL.md`]) {
        const r = await addSkill(projectId, a.id, url);
        expect(r.status, url).to.equal(422);
        expect(r.body.error).to.equal(SKILL_FETCH_ERROR);
        expect(r.text).to.not.contain(SECRET_PAGE);
      }
      expect(secret.connections).to.equal(0);
      // A host off the skill list is refused from the URL alone, before any request.
      const meta = await addSkill(projectId, a.id, 'http://169.254.169.254/latest/meta-data/');
      expect(meta.status).to.equal(400);
      const skills = await req('GET', `/api/v1/projects/${projectId}/agents/${a.id}`);
      expect(skills.body.skills).to.deep.equal([]);
    });

    it("the api's own /metrics is unreachable through skills", async () => {
      const direct = await fetch(`${apiUrl}/metrics`);
      const projectId = await project();
      const a = await agent(projectId);
      for (const url of [`${apiUrl}/metrics`, `http://localhost:${apiPort}/metrics`, `${redirector.url}/to-api-metrics`]) {
        const r = await addSkill(projectId, a.id, url);
        expect(r.status, url).to.equal(422);
        expect(r.body.error).to.equal(SKILL_FETCH_ERROR);
        expect(r.text).to.not.match(/# (HELP|TYPE)|process_cpu|nodejs_/);
      }
      await direct.body?.cancel();
    });

    it('a redirect from an allowed host to loopback (or to another host) is refused; one to an allowed place is followed', async () => {
      const projectId = await project();
      const a = await agent(projectId);
      for (const path of ['/to-secret', '/to-secret-by-name', '/to-other-host', '/loop']) {
        const r = await addSkill(projectId, a.id, `${redirector.url}${path}`);
        expect(r.status, path).to.equal(422);
        expect(r.body.error, path).to.equal(SKILL_FETCH_ERROR);
        expect(r.text).to.not.contain(SECRET_PAGE);
      }
      expect(secret.connections).to.equal(0);
      const ok = await addSkill(projectId, a.id, `${redirector.url}/to-ok`);
      expect(ok.status, ok.text).to.equal(201);
      expect(ok.body.skill_content).to.contain('A fine skill');
    });

    it('one error text for a closed port, a blocked address, a 404, an oversized body and a redirect loop (no port-scanner oracle)', async () => {
      const projectId = await project();
      const a = await agent(projectId);
      const cases = {
        closed: `http://127.0.0.1:${closedPort}/SKILL.md`,
        blocked: `${secret.url}/SKILL.md`,
        notFound: `${files.url}/missing.md`,
        oversized: `${big.url}/SKILL.md`,
        loop: `${redirector.url}/loop`,
      };
      const answers: Record<string, unknown> = {};
      for (const [name, url] of Object.entries(cases)) {
        const r = await addSkill(projectId, a.id, url);
        answers[name] = [r.status, r.body];
      }
      const expected = [422, { error: SKILL_FETCH_ERROR }];
      expect(answers).to.deep.equal(Object.fromEntries(Object.keys(cases).map((k) => [k, expected])));
      expect(secret.connections).to.equal(0);
    });

    it('a webhook to a loopback address is not delivered: the attempt is recorded as blocked, once', async () => {
      const pa = await project();
      const pb = await project();
      const a = await agent(pa, { kind: 'external' });
      const b = await agent(pb, { kind: 'external', webhook_url: `${hook.url}/hook` });
      const keyA = (await req('POST', `/api/v1/projects/${pa}/agents/${a.id}/api-keys`, {})).body.key;
      const keyB = (await req('POST', `/api/v1/projects/${pb}/agents/${b.id}/api-keys`, {})).body.key;
      const code = await req('POST', '/api/v1/pairing-codes', {}, keyA);
      expect(code.status).to.equal(201);
      const conn = await req('POST', '/api/v1/connections', { pairingCode: code.body.code }, keyB);
      expect(conn.status, conn.text).to.equal(201);
      const row = await waitFor('a recorded delivery', async () => db('webhook_deliveries').where({ agent_id: b.id }).first(), 20_000);
      expect(row).to.include({ succeeded: false, status_code: null, attempt: 1 });
      expect(row.error).to.match(/^blocked by the outbound guard \(loopback address\)/);
      await new Promise((r) => setTimeout(r, 1500)); // several backoff periods: no retry of a blocked address
      expect(await db('webhook_deliveries').where({ agent_id: b.id })).to.have.length(1);
      const listed = await req('GET', `/api/v1/projects/${pb}/agents/${b.id}/webhook-deliveries`);
      expect(listed.body.deliveries[0].error).to.match(/blocked by the outbound guard/);
      expect(hook.connections).to.equal(0);
    });

    it('an llm_base_url on a loopback/private address is refused at call time with a clear session error; the key goes nowhere', async () => {
      const projectId = await project();
      const a = await agent(projectId, { llm_provider: 'openai', llm_model: 'gpt-test', llm_base_url: fake.url, llm_api_key: 'sk-SSRF-KEY-123' });
      const s = await req('POST', '/api/v1/sessions', { agent_id: a.id, project_id: projectId, message: 'hi' });
      expect(s.status, s.text).to.equal(201);
      const done = await waitFor('session fails', async () => {
        const row = await db('sessions').where({ id: s.body.id }).first();
        return row?.status === 'failed' ? row : null;
      }, 30_000);
      expect(done.error).to.contain(`llm_base_url ${fake.url} is refused by the outbound guard (loopback address)`);
      expect(done.error).to.contain('TROUPE_OUTBOUND_ALLOW');
      expect(done.error).to.not.contain('sk-SSRF');
      expect(fake.requests).to.have.length(0);
    });

    it('an MCP http server on a loopback address is never contacted (its tools are not offered)', async () => {
      const projectId = await project();
      const a = await agent(projectId, { script: { turns: [{ text: 'ok' }] } });
      const m = await req('POST', `/api/v1/projects/${projectId}/agents/${a.id}/mcp-servers`, {
        server_name: 'internal', transport: 'http', url: `${mcp.url}/mcp`, env: { Authorization: 'Bearer MCP-KEY' },
      });
      expect(m.status).to.equal(201);
      const s = await req('POST', '/api/v1/sessions', { agent_id: a.id, project_id: projectId, message: 'hi' });
      expect(s.status, s.text).to.equal(201);
      await waitFor('session idle', async () => (await db('sessions').where({ id: s.body.id }).first())?.status === 'idle', 30_000);
      expect(mcp.connections).to.equal(0);
    });
  });
});
