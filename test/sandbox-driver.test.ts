import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import Docker from 'dockerode';
import { DockerSandboxDriver } from '../src/runtime/sandbox/docker-driver.js';
import { EXIT_ABORTED, type SandboxSpec } from '../src/runtime/sandbox/driver.js';
import type { Readable } from 'node:stream';
import { waitFor } from './support/wait.js';

// Runs against the real engine. Every container carries this run's own instance label, so cleanup
// can never touch sandboxes that belong to anything else on the host.
const IMAGE = process.env.TROUPE_DEFAULT_IMAGE ?? 'troupe-sandbox-minimal:latest';
const instance = `test-driver-${randomUUID().slice(0, 8)}`;
const docker = new Docker();
const driver = new DockerSandboxDriver({ docker, instance });

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  sandboxId: randomUUID(),
  projectId: 'proj-1',
  image: IMAGE,
  ...over,
});

async function removeAll() {
  for (const c of await driver.list({ instance })) await driver.remove(c.id);
}

/** Processes die at once on SIGKILL, but orphans may linger a beat until init reaps them. */
async function psEventually(containerId: string, absent: string) {
  let out = '';
  // The caller's expect() reports what ps still shows if it never goes.
  await waitFor(`"${absent}" gone from ps`, async () => !(out = (await driver.exec(containerId, { command: 'ps' })).stdout).includes(absent), 1000, 100).catch(() => {});
  return out;
}

const readAll = async (r: Readable) => {
  let out = '';
  for await (const c of r) out += String(c);
  return out;
};

describe('DockerSandboxDriver (real Docker engine)', function () {
  this.timeout(20000);

  after(removeAll);

  it('pings the engine', async () => {
    expect(await driver.ping()).to.equal(true);
    const dead = new DockerSandboxDriver({ docker: new Docker({ socketPath: '/nonexistent.sock' }), instance });
    expect(await dead.ping()).to.equal(false);
  });

  describe('ensure', () => {
    afterEach(removeAll);

    it('creates a labelled, hardened, running container and is idempotent', async () => {
      const s = spec({ sessionId: 'sess-1', labels: { extra: 'yes' }, env: { FOO: 'bar baz' } });
      const info = await driver.ensure(s);
      expect(info.state).to.equal('running');
      expect(info.name).to.equal(`troupe-sbx-${s.sandboxId}`);

      const raw = await docker.getContainer(info.id).inspect();
      expect(raw.Config.Labels).to.include({
        'troupe.managed': 'true',
        'troupe.sandbox': s.sandboxId,
        'troupe.project': 'proj-1',
        'troupe.session': 'sess-1',
        'troupe.instance': instance,
        extra: 'yes',
      });
      expect(raw.Config.Env).to.include('FOO=bar baz');
      const hc = raw.HostConfig;
      expect(hc.NetworkMode).to.equal('none');
      expect(hc.CapDrop).to.include('ALL');
      expect(hc.SecurityOpt).to.include('no-new-privileges');
      expect(hc.PidsLimit).to.equal(256);
      expect(hc.Memory).to.equal(512 * 1024 * 1024);
      expect(hc.MemorySwap).to.equal(hc.Memory);
      expect(hc.NanoCpus).to.equal(1e9);
      expect(hc.Binds ?? []).to.be.empty;
      expect(hc.Privileged).to.equal(false);

      const again = await driver.ensure(s);
      expect(again.id).to.equal(info.id);
    });

    it('applies resource overrides', async () => {
      const info = await driver.ensure(spec({ memoryMb: 128, cpus: 0.5, pidsLimit: 64 }));
      const hc = (await docker.getContainer(info.id).inspect()).HostConfig;
      expect(hc.Memory).to.equal(128 * 1024 * 1024);
      expect(hc.NanoCpus).to.equal(5e8);
      expect(hc.PidsLimit).to.equal(64);
    });

    it('gives one container to concurrent ensures of the same sandbox', async () => {
      const s = spec();
      const infos = await Promise.all([driver.ensure(s), driver.ensure(s), driver.ensure(s)]);
      expect(new Set(infos.map((i) => i.id)).size).to.equal(1);
      const found = await docker.listContainers({ all: true, filters: { label: [`troupe.sandbox=${s.sandboxId}`] } });
      expect(found).to.have.length(1);
      expect(found[0].State).to.equal('running');
    });

    it('explains a missing image instead of pulling', async () => {
      const image = `troupe-no-such-image-${randomUUID().slice(0, 8)}:latest`;
      try {
        await driver.ensure(spec({ image }));
        expect.fail('ensure should have thrown');
      } catch (err) {
        expect((err as Error).message).to.equal(
          `Sandbox image "${image}" not found: build it with "npm run images" or set TROUPE_DEFAULT_IMAGE`,
        );
      }
    });
  });

  describe('exec', () => {
    let id: string;
    before(async () => {
      id = (await driver.ensure(spec())).id;
    });

    it('streams output as it arrives, separates stderr and reports the exit code', async () => {
      const chunks: { stream: string; text: string; at: number }[] = [];
      const res = await driver.exec(id, {
        command: 'echo one; sleep 0.2; echo two; sleep 0.2; echo three; echo oops >&2; exit 3',
        onOutput: (stream, text) => chunks.push({ stream, text, at: Date.now() }),
      });
      const doneAt = Date.now();
      expect(res).to.include({ exitCode: 3, stdout: 'one\ntwo\nthree\n', stderr: 'oops\n', timedOut: false, aborted: false });
      const outChunks = chunks.filter((c) => c.stream === 'stdout');
      expect(outChunks.map((c) => c.text).join('')).to.equal(res.stdout);
      expect(outChunks.length).to.be.at.least(3);
      // "one" was delivered while the command was still sleeping, not buffered until the end.
      expect(doneAt - outChunks[0].at).to.be.at.least(300);
      expect(chunks.filter((c) => c.stream === 'stderr').map((c) => c.text).join('')).to.equal('oops\n');
    });

    it('runs in /workspace by default, honours workdir, and feeds stdin', async () => {
      expect((await driver.exec(id, { command: 'pwd' })).stdout).to.equal('/workspace\n');
      expect((await driver.exec(id, { command: 'pwd', workdir: '/tmp' })).stdout).to.equal('/tmp\n');
      const res = await driver.exec(id, { command: 'tr a-z A-Z', stdin: "it's \"quoted\" $HOME\n" });
      expect(res.stdout).to.equal("IT'S \"QUOTED\" $HOME\n");
    });

    it('passes the command through without quoting bugs', async () => {
      const res = await driver.exec(id, { command: `printf '%s|' "a b" 'c"d' "e'f" \`echo g\`` });
      expect(res.stdout).to.equal(`a b|c"d|e'f|g|`);
    });

    it('caps collected output at 1 MiB with a truncation marker', async () => {
      const res = await driver.exec(id, { command: "head -c 1200000 /dev/zero | tr '\\0' a" });
      expect(res.stdout).to.have.length(1024 * 1024 + '...[truncated]'.length);
      expect(res.stdout.endsWith('a...[truncated]')).to.equal(true);
    });

    it('has no network but loopback', async () => {
      const res = await driver.exec(id, { command: 'ls /sys/class/net' });
      expect(res.stdout.split(/\s+/).filter(Boolean)).to.deep.equal(['lo']);
    });

    it('kills the whole process group on timeout', async () => {
      const started = Date.now();
      const res = await driver.exec(id, { command: 'sleep 31 & sleep 30', timeoutMs: 500 });
      expect(Date.now() - started).to.be.below(3000);
      expect(res).to.include({ exitCode: 124, timedOut: true, aborted: false });
      const ps = await psEventually(id, 'sleep 3');
      expect(ps).to.include('sleep infinity');
      expect(ps).not.to.match(/sleep 3[01]/);
    });

    it('kills the command when the signal aborts', async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const started = Date.now();
      const res = await driver.exec(id, { command: 'sleep 30', signal: ac.signal });
      expect(Date.now() - started).to.be.below(3000);
      expect(res).to.include({ aborted: true, timedOut: false, exitCode: EXIT_ABORTED });
      expect(await psEventually(id, 'sleep 30')).not.to.include('sleep 30');

      const pre = await driver.exec(id, { command: 'touch /tmp/should-not-exist', signal: AbortSignal.abort() });
      expect(pre).to.include({ aborted: true, exitCode: EXIT_ABORTED });
      expect((await driver.exec(id, { command: 'test -e /tmp/should-not-exist' })).exitCode).to.equal(1);
    });

    it('kills a run by runId from outside', async () => {
      const runId = `ext-${randomUUID()}`;
      const running = driver.exec(id, { command: 'sleep 32', runId });
      await waitFor('the run to start', async () => (await driver.exec(id, { command: 'ps' })).stdout.includes('sleep 32'), 5000, 50);
      await driver.kill(id, runId);
      const res = await running;
      expect(res.exitCode).to.equal(137);
      expect(res).to.include({ timedOut: false, aborted: false });
      expect(await psEventually(id, 'sleep 32')).not.to.include('sleep 32');
      // Killing a finished or unknown run is a no-op.
      await driver.kill(id, runId);
      await driver.kill(id, 'never-ran');
    });

    it('round-trips files owned by the agent user', async () => {
      const text = 'héllo wörld\nline 2\n';
      await driver.writeFile(id, 'notes/deep/hello.txt', text);
      expect((await driver.readFile(id, '/workspace/notes/deep/hello.txt')).toString('utf8')).to.equal(text);

      const stat = await driver.exec(id, { command: 'stat -c "%u:%g %a" notes/deep/hello.txt notes/deep' });
      expect(stat.stdout).to.equal('1000:1000 644\n1000:1000 755\n');
      expect((await driver.exec(id, { command: 'echo appended >> notes/deep/hello.txt' })).exitCode).to.equal(0);
      expect((await driver.readFile(id, 'notes/deep/hello.txt')).toString()).to.equal(text + 'appended\n');

      const bytes = Buffer.from([0, 1, 2, 254, 255]);
      await driver.writeFile(id, '/tmp/bin.dat', bytes);
      expect(Buffer.compare(await driver.readFile(id, '/tmp/bin.dat'), bytes)).to.equal(0);

      try {
        await driver.readFile(id, 'missing.txt');
        expect.fail('readFile should have thrown');
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
      }
    });
  });

  describe('execStream', () => {
    let id: string;
    before(async () => {
      id = (await driver.ensure(spec())).id;
    });

    it('talks to a process over stdin/stdout as it runs, with its env, workdir and exit code', async () => {
      const p = await driver.execStream(id, { argv: ['sh', '-c', 'pwd; while read l; do echo "got:$l:$FOO"; done; echo bye >&2; exit 7'], env: { FOO: 'a b' }, workdir: '/tmp' });
      const lines: string[] = [];
      p.stdout.on('data', (c) => lines.push(...String(c).split('\n').filter(Boolean)));
      const waitFor = async (n: number) => {
        for (let i = 0; i < 100 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      };
      p.stdin.write('one\n');
      await waitFor(2);
      // An answer before stdin is closed: a conversation, not a batch.
      expect(lines).to.deep.equal(['/tmp', 'got:one:a b']);
      p.stdin.end('two\n');
      const [err, code] = await Promise.all([readAll(p.stderr), p.exited]);
      expect(lines).to.deep.equal(['/tmp', 'got:one:a b', 'got:two:a b']);
      expect(err).to.equal('bye\n');
      expect(code).to.equal(7);
    });

    it('passes argv through without a shell', async () => {
      const p = await driver.execStream(id, { argv: ['printf', '%s|', 'a b', `c'd`, '$HOME', '`id`'] });
      p.stdin.end();
      expect(await readAll(p.stdout)).to.equal("a b|c'd|$HOME|`id`|");
      expect(await p.exited).to.equal(0);
    });

    it('kill() takes down the process group; close() gives the process EOF', async () => {
      const p = await driver.execStream(id, { argv: ['sh', '-c', 'sleep 41 & sleep 40'] });
      await new Promise((r) => setTimeout(r, 300));
      await p.kill();
      expect(await p.exited).to.equal(EXIT_ABORTED);
      expect(await psEventually(id, 'sleep 4')).not.to.match(/sleep 4[01]/);

      const cat = await driver.execStream(id, { argv: ['sh', '-c', 'cat; echo eof > /tmp/cat-saw-eof'] });
      await new Promise((r) => setTimeout(r, 300));
      cat.close();
      let saw = '';
      for (let i = 0; i < 20 && !saw; i++) {
        saw = (await driver.exec(id, { command: 'cat /tmp/cat-saw-eof 2>/dev/null' })).stdout;
        if (!saw) await new Promise((r) => setTimeout(r, 100));
      }
      expect(saw).to.equal('eof\n');
      await cat.exited;
    });
  });

  describe('lifecycle', () => {
    afterEach(removeAll);

    it('pauses, unpauses and removes (idempotently)', async () => {
      const { id } = await driver.ensure(spec());
      await driver.pause(id);
      await driver.pause(id);
      expect((await driver.inspect(id))?.state).to.equal('paused');
      await driver.unpause(id);
      await driver.unpause(id);
      expect((await driver.inspect(id))?.state).to.equal('running');
      await driver.remove(id);
      expect(await driver.inspect(id)).to.equal(null);
      await driver.remove(id);
    });

    it('leaves a paused sandbox paused on ensure', async () => {
      const s = spec();
      const { id } = await driver.ensure(s);
      await driver.pause(id);
      const again = await driver.ensure(s);
      expect(again).to.include({ id, state: 'paused' });
    });

    it('finds stopped containers by label, lists by instance, and restarts them on ensure', async () => {
      const s = spec();
      const { id } = await driver.ensure(s);
      await docker.getContainer(id).stop({ t: 0 });

      const found = await driver.find(s.sandboxId);
      expect(found).to.include({ id, state: 'exited', name: `troupe-sbx-${s.sandboxId}` });
      expect(found?.labels['troupe.project']).to.equal('proj-1');
      expect(await driver.find(randomUUID())).to.equal(null);

      expect((await driver.list({ instance })).map((c) => c.id)).to.include(id);
      expect(await driver.list({ instance: `other-${randomUUID()}` })).to.deep.equal([]);
      expect((await driver.list()).map((c) => c.id)).to.include(id);

      expect(await driver.ensure(s)).to.include({ id, state: 'running' });
    });

    it('puts bridge sandboxes on a network', async () => {
      const { id } = await driver.ensure(spec({ network: 'bridge' }));
      expect((await docker.getContainer(id).inspect()).HostConfig.NetworkMode).to.equal('bridge');
      const res = await driver.exec(id, { command: 'ls /sys/class/net' });
      expect(res.stdout.split(/\s+/)).to.include('eth0');
    });
  });
});
