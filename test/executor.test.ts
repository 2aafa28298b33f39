import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { DockerSandboxDriver } from '../src/runtime/sandbox/docker-driver.js';
import { EXIT_ABORTED, EXIT_TIMED_OUT } from '../src/runtime/sandbox/driver.js';
import { MarkerScanner } from '../src/runtime/sandbox/executor.js';

const START = '\x1e\x1fTROUPE:';

describe('executor end markers (parser only)', () => {
  const scan = (current: string) => {
    const out = { text: '', markers: [] as string[], ready: 0, maxHeld: 0 };
    const s = new MarkerScanner((t) => (out.text += t), (id, code) => (out.markers.push(`${id}:${code}`), id === current), () => out.ready++);
    const write = (chunk: string) => {
      s.write(Buffer.from(chunk));
      out.maxHeld = Math.max(out.maxHeld, s.held);
    };
    return { out, write };
  };

  it('finds markers split across chunks and passes everything else on', () => {
    const { out, write } = scan('run-1');
    const stream = `${START}READY\x1e\nhello\n${START}run-1:3\x1e\n`;
    for (const ch of stream) write(ch);
    expect(out).to.deep.include({ text: 'hello\n', markers: ['run-1:3'], ready: 1 });
  });

  it('a fake marker prefix followed by megabytes is output: nothing is held back beyond a marker length', () => {
    const { out, write } = scan('run-1');
    write(START);
    const chunk = 'a'.repeat(64 * 1024);
    for (let i = 0; i < 64; i++) write(chunk);
    write(`${START}run-1:0\x1e\n`);
    expect(out.markers).to.deep.equal(['run-1:0']);
    expect(out.text.length).to.equal(START.length + 64 * chunk.length);
    expect(out.maxHeld).to.be.below(300);
  });

  it('malformed or foreign markers are output too', () => {
    const { out, write } = scan('run-1');
    write(`${START}hi\n${START}other:1\x1e\n${START}run-1:0\x1e\n`);
    expect(out.text).to.equal(`${START}hi\n${START}other:1\x1e\n`);
    expect(out.markers).to.deep.equal(['other:1', 'run-1:0']);
  });
});

/** The persistent executor fast path, against the plain exec path on the same container. */
describe('persistent executor (fast path)', function () {
  this.timeout(60_000);
  const docker = new Docker();
  const instance = `test-exec-${randomUUID().slice(0, 8)}`;
  const fast = new DockerSandboxDriver({ docker, instance, executor: true });
  const plain = new DockerSandboxDriver({ docker, instance, executor: false });
  let id = '';
  before(async () => {
    id = (await fast.ensure({ sandboxId: randomUUID(), projectId: 'p', image: 'troupe-sandbox-minimal:latest' })).id;
  });
  after(async () => {
    for (const c of await fast.list({ instance })) await fast.remove(c.id);
  });

  it('gives the same results as a plain exec: output, stderr, exit code, workdir, odd bytes', async () => {
    const cmds = ['echo out; echo err >&2; exit 3', 'pwd', "printf 'no newline'", "printf '\\036 almost a marker \\037'", 'echo ünïcødé'];
    for (const command of cmds) {
      const a = await fast.exec(id, { command });
      const b = await plain.exec(id, { command });
      expect({ o: a.stdout, e: a.stderr, c: a.exitCode }, command).to.deep.equal({ o: b.stdout, e: b.stderr, c: b.exitCode });
    }
  });

  it('output that looks like a marker is output: the command neither hangs nor loses it', async () => {
    for (const command of ["printf '\\036\\037TROUPE:'; head -c 3000000 /dev/zero | tr '\\0' a; echo", "printf '\\036\\037TROUPE:x\\n'; echo after", "printf '\\036\\037TROUPE:abc:1\\036\\n'; echo after"]) {
      const t0 = Date.now();
      const a = await fast.exec(id, { command, timeoutMs: 10_000 });
      expect({ timedOut: a.timedOut, code: a.exitCode }, command).to.deep.equal({ timedOut: false, code: 0 });
      expect(Date.now() - t0, command).to.be.below(5000);
      const b = await plain.exec(id, { command });
      expect(a.stdout === b.stdout, command).to.equal(true);
    }
  });

  it('streams output while the command runs, and really runs through one long-lived process', async () => {
    const seen: number[] = [];
    const t0 = Date.now();
    const r = await fast.exec(id, { command: 'echo a; sleep 0.3; echo b', onOutput: () => seen.push(Date.now() - t0) });
    expect(r.stdout).to.equal('a\nb\n');
    expect(seen[0]).to.be.lessThan(250);
    const ps = await plain.exec(id, { command: 'ps -o pid,args' });
    expect(ps.stdout).to.contain('TROUPE:READY');
  });

  it('times out and aborts by killing the process group, then keeps working', async () => {
    const t = await fast.exec(id, { command: 'sleep 30', timeoutMs: 300 });
    expect(t).to.include({ timedOut: true, exitCode: 124 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const a = await fast.exec(id, { command: 'sleep 30', signal: ac.signal });
    expect(a.aborted).to.equal(true);
    expect((await plain.exec(id, { command: 'ps' })).stdout).to.not.contain('sleep 30');
    expect((await fast.exec(id, { command: 'echo still-here' })).stdout).to.equal('still-here\n');
  });

  it('an aborted command gives the same result on both paths: EXIT_ABORTED, started or not, whatever it traps', async () => {
    const abortAfter = (ms: number) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), ms);
      return ac.signal;
    };
    for (const [name, d] of [['fast', fast], ['plain', plain]] as const) {
      const running = await d.exec(id, { command: 'sleep 30', signal: abortAfter(300) });
      expect({ name, code: running.exitCode, aborted: running.aborted }).to.deep.equal({ name, code: EXIT_ABORTED, aborted: true });
      const trapping = await d.exec(id, { command: "trap '' INT TERM; sleep 30 & wait; exit 5", signal: abortAfter(300) });
      expect({ name, code: trapping.exitCode, aborted: trapping.aborted }).to.deep.equal({ name, code: EXIT_ABORTED, aborted: true });
      const never = await d.exec(id, { command: 'touch /tmp/never', signal: AbortSignal.abort() });
      expect({ name, code: never.exitCode, aborted: never.aborted }).to.deep.equal({ name, code: EXIT_ABORTED, aborted: true });
      const timedOut = await d.exec(id, { command: 'sleep 30', timeoutMs: 300 });
      expect({ name, code: timedOut.exitCode }).to.deep.equal({ name, code: EXIT_TIMED_OUT });
    }
    expect(EXIT_ABORTED).to.equal(130);
  });

  it('a command right after an aborted one runs to its end on the executor (the kill grace does not cut it off)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    expect((await fast.exec(id, { command: 'sleep 30', signal: ac.signal })).aborted).to.equal(true);
    // The kill's grace period (2 s) ends while this one is still running.
    const next = await fast.exec(id, { command: 'sleep 2.5; echo done' });
    expect(next).to.include({ exitCode: 0, stdout: 'done\n', aborted: false });
  });

  it('runs concurrent commands (the busy executor hands extras to plain execs)', async () => {
    const rs = await Promise.all([1, 2, 3].map((i) => fast.exec(id, { command: `sleep 0.2; echo ${i}` })));
    expect(rs.map((r) => r.stdout)).to.deep.equal(['1\n', '2\n', '3\n']);
  });

  it('is faster than a plain exec per call', async () => {
    const time = async (d: DockerSandboxDriver) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 10; i++) await d.exec(id, { command: 'true' });
      return Number(process.hrtime.bigint() - t0) / 1e6 / 10;
    };
    await time(fast);
    const f = await time(fast);
    const p = await time(plain);
    // Not a benchmark (see bench/): just proof that the fast path is in use.
    expect(f).to.be.lessThan(p);
  });
});
