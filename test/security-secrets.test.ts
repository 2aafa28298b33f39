/**
 * Issue 12, finding 1 (default secrets) and issue 11, point 5 (config): one frozen, validated
 * config; public default secrets refused beyond loopback; JWTs must expire; stored secrets move
 * to a new TROUPE_SECRET_KEY with `npm run rotate-secret-key`.
 */
import { expect } from 'chai';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { spawn } from 'node:child_process';
import knexFactory, { type Knex } from 'knex';
import { SignJWT } from 'jose';
import { call, newUser, uniq } from './support/harness.js';
import { checkSecrets, config, ConfigError, DEV_JWT_SECRET, DEV_SECRET_KEY_HEX, isLoopbackHost, loadConfig } from '../src/config.js';
import { seal, unseal } from '../src/lib/secrets.js';

const hex32 = () => crypto.randomBytes(32).toString('hex');
const REAL = { TROUPE_JWT_SECRET: hex32(), TROUPE_SECRET_KEY: hex32() };

/** Runs a command to its end (or kills it after `ms`), with the given environment on top of ours. */
function run(args: string[], env: Record<string, string | undefined>, ms = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('security: configuration and default secrets (issue 12 finding 1, issue 11 point 5)', function () {
  this.timeout(60_000);

  describe('config: one validated, immutable object', () => {
    it('is deeply frozen: assigning to it (or to a list in it) throws', () => {
      const c = loadConfig({});
      expect(Object.isFrozen(c)).to.equal(true);
      expect(() => {
        (c as { poolMaxAgeSeconds: number }).poolMaxAgeSeconds = 0;
      }).to.throw(TypeError);
      expect(() => (c.adminUsers as string[]).push('mallory')).to.throw(TypeError);
      expect(() => {
        (config as { jwtSecret: string }).jwtSecret = 'mine';
      }).to.throw(TypeError);
      // The key cannot be changed through a returned Buffer either.
      config.secretKey.fill(0);
      expect(config.secretKey.equals(Buffer.alloc(32))).to.equal(false);
    });

    it('loadConfig is pure: it reads only its argument and returns a new object each time', () => {
      const a = loadConfig({ TROUPE_POOL_SIZE: '0', PORT: '8080' });
      const b = loadConfig({});
      expect(a.poolSize).to.equal(0);
      expect(a.port).to.equal(8080);
      expect(b.poolSize).to.equal(2);
      expect(b.port).to.equal(3000);
      expect(a).to.not.equal(b);
      // Not from process.env: the suite's own settings do not leak into a config built from {}.
      expect(b.redisPrefix).to.equal('troupe');
      expect(config.redisPrefix).to.equal(process.env.TROUPE_REDIS_PREFIX);
    });

    it('reports every bad value at once, each with what was expected, and never echoes a secret', () => {
      const msg = refusal({
        PORT: 'eighty', DATABASE_URL: 'mysql://u:hunter2@db/x', TROUPE_SANDBOX_CPUS: '0', TROUPE_LOG_LEVEL: 'loud',
        TROUPE_JWT_SECRET: 'short-secret', TROUPE_SECRET_KEY: 'not-a-key', TROUPE_EXECUTOR: 'maybe', TROUPE_POOL_MAX_AGE_SECONDS: '1',
      });
      for (const part of [
        'PORT="eighty": expected an integer between 0 and 65535',
        'DATABASE_URL="mysql://u:***@db/x": expected a postgres:// or postgresql:// URL',
        'TROUPE_SANDBOX_CPUS="0": expected a number between 0.01 and 256',
        'TROUPE_LOG_LEVEL="loud": expected fatal|error|warn|info|debug|trace|silent',
        'TROUPE_JWT_SECRET: expected at least 16 characters',
        'TROUPE_SECRET_KEY: expected 32 bytes',
        'TROUPE_EXECUTOR="maybe": expected on|off',
        'TROUPE_POOL_MAX_AGE_SECONDS="1": expected an integer of at least 10',
      ]) expect(msg).to.contain(part);
      expect(msg).to.not.contain('hunter2');
      expect(msg).to.not.contain('short-secret');
      expect(msg).to.not.contain('not-a-key');
    });

    it('keeps secrets out of JSON and logs', () => {
      const c = loadConfig(REAL);
      const text = JSON.stringify(c);
      expect(text).to.not.contain(REAL.TROUPE_JWT_SECRET);
      expect(text).to.not.contain(REAL.TROUPE_SECRET_KEY);
      expect(c.jwtSecret).to.equal(REAL.TROUPE_JWT_SECRET);
      expect(c.secretKey.toString('hex')).to.equal(REAL.TROUPE_SECRET_KEY);
      expect(loadConfig({ TROUPE_SECRET_KEY: crypto.randomBytes(32).toString('base64') }).secretKey).to.have.length(32);
    });
  });

  describe('default secrets are refused beyond loopback', () => {
    it('isLoopbackHost: 127.0.0.0/8, ::1 and localhost only', () => {
      for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).to.equal(true);
      for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.10', 'example.com', '128.0.0.1', '::ffff:10.0.0.1', 'localhost.example.com']) expect(isLoopbackHost(h), h).to.equal(false);
    });

    it('checkSecrets: the one decision (notes on loopback, refusal elsewhere, nothing with real secrets)', () => {
      const key = crypto.randomBytes(32);
      const devKey = Buffer.from(DEV_SECRET_KEY_HEX, 'hex');
      const cases: Array<[string, string | undefined, Buffer | undefined, number, number]> = [
        // host, jwt secret, key, refusals, notes
        ['127.0.0.1', undefined, undefined, 0, 2],
        ['localhost', DEV_JWT_SECRET, devKey, 0, 2],
        ['127.0.0.1', 'a-real-and-long-secret-value', key, 0, 0],
        ['0.0.0.0', undefined, undefined, 2, 0],
        ['0.0.0.0', DEV_JWT_SECRET, key, 1, 0],
        ['0.0.0.0', 'change-me-please-0123456789', key, 1, 0], // the old docker-compose default
        ['::', 'a-real-and-long-secret-value', devKey, 1, 0],
        ['10.1.2.3', 'a-real-and-long-secret-value', Buffer.alloc(32), 1, 0], // all zeros
        ['0.0.0.0', 'a-real-and-long-secret-value', key, 0, 0],
      ];
      for (const [host, jwtSecret, secretKey, refusals, notes] of cases) {
        const v = checkSecrets({ host, jwtSecret, secretKey });
        expect([v.refuse.length, v.notes.length], `${host} ${jwtSecret} ${secretKey?.toString('hex')}`).to.deep.equal([refusals, notes]);
      }
    });

    it('loadConfig refuses HOST=0.0.0.0 with unset or known secrets, saying what to set and how to generate it', () => {
      const msg = refusal({ HOST: '0.0.0.0' });
      expect(msg).to.contain('TROUPE_JWT_SECRET is not set and HOST=0.0.0.0 listens beyond loopback');
      expect(msg).to.contain('TROUPE_SECRET_KEY is not set');
      expect(msg).to.contain('openssl rand -hex 32');
      expect(refusal({ HOST: '0.0.0.0', TROUPE_JWT_SECRET: DEV_JWT_SECRET, TROUPE_SECRET_KEY: hex32() })).to.contain('TROUPE_JWT_SECRET is a publicly known default');
      expect(refusal({ HOST: '0.0.0.0', TROUPE_JWT_SECRET: hex32(), TROUPE_SECRET_KEY: DEV_SECRET_KEY_HEX })).to.contain('TROUPE_SECRET_KEY is a publicly known default');
      const ok = loadConfig({ HOST: '0.0.0.0', ...REAL });
      expect([ok.host, ok.loopbackOnly, ok.jwtSecretIsDevDefault, ok.secretKeyIsDevDefault]).to.deep.equal(['0.0.0.0', false, false, false]);
      const dev = loadConfig({});
      expect([dev.host, dev.loopbackOnly, dev.jwtSecretIsDevDefault, dev.secretKeyIsDevDefault]).to.deep.equal(['127.0.0.1', true, true, true]);
    });

    it('the real api process refuses to start on 0.0.0.0 without secrets, and starts on loopback with the dev defaults', async () => {
      const port = await freePort();
      // Its own Redis prefix and instance label, so it never meets this suite's queues.
      const bare = { TROUPE_JWT_SECRET: undefined, TROUPE_SECRET_KEY: undefined, PORT: String(port), TROUPE_REDIS_PREFIX: `${config.redisPrefix}-child`, TROUPE_INSTANCE: `${config.instance}-child` };
      const refused = await run(['src/main.ts', '--api-only'], { ...bare, HOST: '0.0.0.0' });
      expect(refused.code).to.equal(1);
      expect(refused.out).to.contain('TROUPE_JWT_SECRET is not set and HOST=0.0.0.0 listens beyond loopback');
      expect(refused.out).to.not.contain('Troupe is running');
      // Nothing is listening on that port: the process stopped before binding.
      const probe = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 'refused');
      expect(probe).to.equal('refused');

      // Loopback (the default HOST): starts, says it uses the dev defaults, answers.
      const child = spawn('npx', ['tsx', 'src/main.ts', '--api-only'], { env: { ...process.env, ...bare, HOST: '' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      try {
        const deadline = Date.now() + 30_000;
        while (!out.includes('Troupe is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(out).to.contain('Troupe is running');
        expect(out).to.contain('Note: using the DEV default TROUPE_JWT_SECRET');
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).to.equal(200);
      } finally {
        process.kill(-child.pid!, 'SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    });

    it('docker-compose.yml ships no secret: it requires both and listens on all interfaces only with them', () => {
      const compose = fs.readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
      expect(compose).to.not.contain('change-me-please');
      expect(compose).to.match(/TROUPE_JWT_SECRET: \$\{TROUPE_JWT_SECRET:\?[^}]+\}/);
      expect(compose).to.match(/TROUPE_SECRET_KEY: \$\{TROUPE_SECRET_KEY:\?[^}]+\}/);
      expect(compose).to.not.match(/TROUPE_(JWT_SECRET|SECRET_KEY): \$\{[A-Z_]+:-/);
    });
  });

  describe('JWTs must expire', () => {
    const secret = () => new TextEncoder().encode(config.jwtSecret);
    it('a token without exp is 401; with exp it works; expired is 401', async () => {
      const u = await newUser();
      const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(u.id).setIssuedAt().sign(secret());
      const r = await call('GET', '/api/v1/projects', { token: noExp });
      expect(r.status).to.equal(401);
      expect(r.body.error).to.be.a('string');
      const withExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(u.id).setIssuedAt().setExpirationTime('5m').sign(secret());
      expect((await call('GET', '/api/v1/projects', { token: withExp })).status).to.equal(200);
      const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(u.id).setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(secret());
      expect((await call('GET', '/api/v1/projects', { token: expired })).status).to.equal(401);
    });
  });

  describe('npm run rotate-secret-key', () => {
    // Its own database, so the rotation cannot touch the rows the rest of the suite reads.
    const base = new URL(process.env.DATABASE_URL!);
    const dbName = `${base.pathname.slice(1)}_rotate_${process.pid}`;
    const url = Object.assign(new URL(base.href), { pathname: `/${dbName}` }).href;
    let admin: Knex;
    let rot: Knex;
    const plain = { llm: 'sk-model-key', hook: 'whsec_hook', mcp: JSON.stringify({ TOKEN: 'mcp-token' }), sandbox: JSON.stringify({ API: 'sandbox-secret' }) };
    const devKey = Buffer.from(DEV_SECRET_KEY_HEX, 'hex');
    const newKey = hex32();
    let ids: { agent: string; mcp: string; sandbox: string };

    before(async function () {
      this.timeout(120_000);
      admin = knexFactory({ client: 'pg', connection: base.href, pool: { min: 0, max: 1 } });
      await admin.raw(`drop database if exists "${dbName}"`);
      await admin.raw(`create database "${dbName}"`);
      const migrated = await run(['scripts/migrate.ts', 'latest'], { DATABASE_URL: url }, 90_000);
      expect(migrated.code, migrated.out).to.equal(0);
      rot = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
      // Sealed as a server on the dev defaults would have sealed them.
      const [project] = await rot('projects').insert({ name: 'p', created_by: 'u' }).returning('id');
      const [agent] = await rot('agents').insert({
        project_id: project.id, name: 'a', handle: 'a', llm_api_key_sealed: seal(plain.llm, devKey), webhook_secret_sealed: seal(plain.hook, devKey),
      }).returning('id');
      await rot('agents').insert({ project_id: project.id, name: 'b', handle: 'b' }); // no secrets at all
      const [mcp] = await rot('agent_mcp_servers').insert({ agent_id: agent.id, server_name: 's', transport: 'stdio', command: 'x', env_sealed: seal(plain.mcp, devKey) }).returning('id');
      const [sandbox] = await rot('sandboxes').insert({ project_id: project.id, agent_id: agent.id, image: 'i', env_sealed: seal(plain.sandbox, devKey) }).returning('id');
      ids = { agent: agent.id, mcp: mcp.id, sandbox: sandbox.id };
    });
    after(async () => {
      await rot?.destroy();
      await admin?.raw(`drop database if exists "${dbName}" with (force)`);
      await admin?.destroy();
    });

    async function sealedValues() {
      const a = await rot('agents').where({ id: ids.agent }).first();
      const m = await rot('agent_mcp_servers').where({ id: ids.mcp }).first();
      const s = await rot('sandboxes').where({ id: ids.sandbox }).first();
      return { llm: a.llm_api_key_sealed, hook: a.webhook_secret_sealed, mcp: m.env_sealed, sandbox: s.env_sealed } as Record<keyof typeof plain, string>;
    }
    const openAll = (v: Record<keyof typeof plain, string>, key: Buffer) =>
      Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unseal(x, key)]));

    it('re-encrypts every *_sealed column under the new key, in one go; running it again changes nothing', async () => {
      const bad = await run(['scripts/rotate-secret-key.ts'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: undefined, TROUPE_SECRET_KEY: newKey });
      expect(bad.code).to.equal(2);
      expect(bad.out).to.contain('TROUPE_SECRET_KEY_OLD is not set');
      const dry = await run(['scripts/rotate-secret-key.ts', '--dry-run'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: 'dev', TROUPE_SECRET_KEY: newKey });
      expect(dry.code, dry.out).to.equal(0);
      expect(dry.out).to.contain('dry run: 4 value(s) would be re-encrypted');
      expect(openAll(await sealedValues(), devKey)).to.deep.equal(plain);

      const r = await run(['scripts/rotate-secret-key.ts'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: 'dev', TROUPE_SECRET_KEY: newKey });
      expect(r.code, r.out).to.equal(0);
      for (const line of ['agents.llm_api_key_sealed: 1 re-encrypted', 'agents.webhook_secret_sealed: 1 re-encrypted', 'agent_mcp_servers.env_sealed: 1 re-encrypted', 'sandboxes.env_sealed: 1 re-encrypted']) {
        expect(r.out).to.contain(line);
      }
      const after = await sealedValues();
      expect(openAll(after, Buffer.from(newKey, 'hex'))).to.deep.equal(plain);
      for (const v of Object.values(after)) expect(() => unseal(v, devKey)).to.throw();

      const again = await run(['scripts/rotate-secret-key.ts'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: 'dev', TROUPE_SECRET_KEY: newKey });
      expect(again.code, again.out).to.equal(0);
      expect(again.out).to.contain('done: 0 value(s) re-encrypted');
      expect(await sealedValues()).to.deep.equal(after);
    });

    it('a value under neither key stops it and nothing is changed (one transaction)', async () => {
      const before = await sealedValues();
      const stranger = crypto.randomBytes(32);
      await rot('agents').insert({ project_id: (await rot('projects').first('id')).id, name: 'c', handle: uniq('c'), llm_api_key_sealed: seal('x', stranger) });
      const next = hex32();
      const r = await run(['scripts/rotate-secret-key.ts'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: newKey, TROUPE_SECRET_KEY: next });
      expect(r.code).to.equal(1);
      expect(r.out).to.contain('opens under neither the old nor the new key: nothing was changed');
      expect(await sealedValues()).to.deep.equal(before);
    });

    it('refuses to rotate to a publicly known key', async () => {
      const r = await run(['scripts/rotate-secret-key.ts'], { DATABASE_URL: url, TROUPE_SECRET_KEY_OLD: newKey, TROUPE_SECRET_KEY: DEV_SECRET_KEY_HEX });
      expect(r.code).to.equal(2);
      expect(r.out).to.contain('publicly known key');
    });
  });
});
