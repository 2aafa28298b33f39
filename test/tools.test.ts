import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { DockerSandboxDriver } from '../src/runtime/sandbox/docker-driver.js';
import { EDIT_MAX_BYTES, READ_MAX_BYTES } from '../src/runtime/tools/shell-files.js';
import { EXIT_ABORTED, type ExecOptions, type ExecResult, type SandboxDriver } from '../src/runtime/sandbox/driver.js';
import { busyLanes, exclusive, laneDriver } from '../src/runtime/sandbox-lane.js';
import { finishTool, shellAndFileTools, taskTools, ToolRegistry, type ToolFamily, type ToolRunContext } from '../src/runtime/tools/index.js';
import type { SessionRow } from '../src/db/session-store.js';

/** A driver that records what the tools ask of it; no engine involved. */
function fakeDriver(files: Record<string, string> = {}) {
  const execs: ExecOptions[] = [];
  const reads: number[] = [];
  const driver = {
    async exec(_id: string, opts: ExecOptions): Promise<ExecResult> {
      execs.push(opts);
      opts.onStart?.();
      return { exitCode: 0, stdout: `ran ${opts.command}\n`, stderr: '', timedOut: false, aborted: false };
    },
    async readFile() {
      throw new Error('tools must not read a whole file of unknown size');
    },
    async readFileHead(_id: string, p: string, maxBytes: number) {
      reads.push(maxBytes);
      if (!(p in files)) throw new Error(`No such file: ${p}`);
      const all = Buffer.from(files[p]);
      return { data: all.subarray(0, maxBytes), size: all.length };
    },
    async writeFile(_id: string, p: string, content: string | Buffer) {
      files[p] = String(content);
    },
  } as unknown as SandboxDriver;
  return { driver, execs, files, reads };
}

function context(driver: SandboxDriver, over: Partial<ToolRunContext> = {}): ToolRunContext {
  return {
    session: { id: 's1', project_id: 'p1', status: 'running', activation: 1, task_id: null } as SessionRow,
    driver, containerId: 'c1',
    signal: new AbortController().signal, killSignal: new AbortController().signal,
    maxTimeoutMs: 60_000, onOutput: () => {}, onStart: () => {},
    ...over,
  };
}

const call = (name: string, input: Record<string, unknown> = {}, id = 'toolu_1') => ({ id, name, input });

describe('tool registry and families (no engine)', () => {
  it('offers the families in order and dispatches each call to the family that has it', async () => {
    const seen: string[] = [];
    const family = (name: string): ToolFamily => ({
      definitions: [{ name, description: name, input_schema: { type: 'object' } }],
      has: (n) => n === name,
      run: async (c) => (seen.push(c.name), { content: `${name} ran`, is_error: false }),
    });
    const registry = new ToolRegistry([family('a'), family('b')]);
    expect(registry.definitions.map((d) => d.name)).to.deep.equal(['a', 'b']);
    expect(registry.has('b')).to.equal(true);
    expect(registry.has('c')).to.equal(false);
    const { driver } = fakeDriver();
    expect(await registry.run(call('b'), context(driver))).to.deep.equal({ content: 'b ran', is_error: false });
    expect(await registry.run(call('c'), context(driver))).to.deep.equal({ content: 'Unknown tool "c". Available: a, b', is_error: true });
    expect(seen).to.deep.equal(['b']);
  });

  it('the built-in families offer the same tools, in the same order, as before the split', () => {
    const registry = new ToolRegistry([shellAndFileTools(), finishTool(), taskTools(false)]);
    expect(registry.definitions.map((d) => d.name)).to.deep.equal(['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish']);
    expect(new ToolRegistry([taskTools(true)]).definitions.map((d) => d.name)).to.deep.equal(['task_reply', 'task_update_status']);
  });

  it("the agent type's list limits what is offered; the calls still run (as before the split)", async () => {
    const offer = (n: string) => ['bash', 'finish'].includes(n);
    const registry = new ToolRegistry([shellAndFileTools(offer), finishTool(offer)]);
    expect(registry.definitions.map((d) => d.name)).to.deep.equal(['bash', 'finish']);
    const { driver, files } = fakeDriver();
    expect((await registry.run(call('write_file', { path: 'a.txt', content: 'x' }), context(driver))).is_error).to.equal(false);
    expect(files['/workspace/a.txt']).to.equal('x');
  });

  it('bash runs through the driver with the kill signal, the call id as run id and the capped timeout', async () => {
    const { driver, execs } = fakeDriver();
    const ctx = context(driver, { maxTimeoutMs: 5000 });
    const r = await shellAndFileTools().run(call('bash', { command: 'echo hi', timeout_seconds: 60 }), ctx);
    expect(r).to.deep.equal({ content: 'ran echo hi\n\n[exit code 0]', is_error: false, exit_code: 0 });
    expect(execs[0]).to.include({ command: 'echo hi', timeoutMs: 5000, runId: 'toolu_1', signal: ctx.killSignal, onOutput: ctx.onOutput, onStart: ctx.onStart });
    expect((await shellAndFileTools().run(call('bash', {}), ctx)).is_error).to.equal(true);
  });

  it('files: read, write, edit exactly once, list with a quoted path', async () => {
    const { driver, execs, files } = fakeDriver({ '/workspace/notes.txt': 'one two two' });
    const tools = shellAndFileTools();
    const ctx = context(driver);
    expect(await tools.run(call('read_file', { path: 'notes.txt' }), ctx)).to.deep.equal({ content: 'one two two', is_error: false });
    expect((await tools.run(call('read_file', { path: 'nope' }), ctx)).content).to.equal('Cannot read /workspace/nope: No such file: /workspace/nope');
    expect((await tools.run(call('edit_file', { path: 'notes.txt', old_string: 'two', new_string: '2' }), ctx)).content).to.match(/found 2 occurrences/);
    expect(await tools.run(call('edit_file', { path: 'notes.txt', old_string: 'one', new_string: '$&1' }), ctx)).to.deep.equal({ content: 'Edited /workspace/notes.txt', is_error: false });
    expect(files['/workspace/notes.txt']).to.equal('$&1 two two');
    expect(await tools.run(call('write_file', { path: '/tmp/x', content: 'héllo' }), ctx)).to.deep.equal({ content: 'Wrote 6 bytes to /tmp/x', is_error: false });
    await tools.run(call('list_files', { path: "it's here" }), ctx);
    expect(execs.at(-1)!.command).to.equal(`find '/workspace/it'\\''s here' -maxdepth 2 | sort | head -500`);
  });

  it('read_file reads at most 1 MiB and says when the file is larger; edit_file refuses what it cannot hold', async () => {
    const big = 'é'.repeat(READ_MAX_BYTES); // 2 bytes each: the cut falls inside the file
    const { driver, reads } = fakeDriver({ '/workspace/big.txt': big, '/workspace/small.txt': 'small' });
    const tools = shellAndFileTools();
    const r = await tools.run(call('read_file', { path: 'big.txt' }), context(driver));
    expect(reads).to.deep.equal([READ_MAX_BYTES]);
    expect(r.is_error).to.equal(false);
    expect(r.content).to.match(/^é+\n\.\.\.\[truncated \d+ characters\]\n/);
    expect(r.content.endsWith(`...[/workspace/big.txt is ${2 * READ_MAX_BYTES} bytes; this is its first ${READ_MAX_BYTES}: use bash (head, tail, sed -n) for the rest]`)).to.equal(true);
    expect(await tools.run(call('read_file', { path: 'small.txt' }), context(driver))).to.deep.equal({ content: 'small', is_error: false });

    const huge = fakeDriver({ '/workspace/huge.txt': 'x'.repeat(EDIT_MAX_BYTES + 1) });
    const e = await tools.run(call('edit_file', { path: 'huge.txt', old_string: 'x', new_string: 'y' }), context(huge.driver));
    expect(huge.reads).to.deep.equal([EDIT_MAX_BYTES]);
    expect(e).to.deep.equal({ content: `/workspace/huge.txt is ${EDIT_MAX_BYTES + 1} bytes, more than edit_file handles (${EDIT_MAX_BYTES}); edit it with bash (e.g. sed)`, is_error: true });
  });

  it('finish ends the session with its summary', async () => {
    const { driver } = fakeDriver();
    expect(await finishTool().run(call('finish', { summary: 'done it' }), context(driver))).to.deep.equal({ content: 'done it', is_error: false, finish: { summary: 'done it' } });
    expect(await finishTool().run(call('finish', {}), context(driver))).to.deep.equal({ content: 'finished', is_error: false, finish: { summary: '' } });
  });

  it('closes every family that holds something', async () => {
    let closed = 0;
    const holder: ToolFamily = { definitions: [], has: () => false, run: async () => ({ content: '', is_error: false }), close: async () => void closed++ };
    const failing: ToolFamily = { ...holder, close: async () => { closed++; throw new Error('gone'); } };
    await new ToolRegistry([holder, shellAndFileTools(), failing]).close();
    expect(closed).to.equal(2);
  });
});

describe('read_file on the real engine', function () {
  this.timeout(30_000);
  const instance = `test-tools-${randomUUID().slice(0, 8)}`;
  const driver = new DockerSandboxDriver({ docker: new Docker(), instance });
  let id = '';
  before(async () => {
    id = (await driver.ensure({ sandboxId: randomUUID(), projectId: 'p', image: 'troupe-sandbox-minimal:latest' })).id;
  });
  after(async () => {
    for (const c of await driver.list({ instance })) await driver.remove(c.id);
  });

  it('a huge sparse file: the first 1 MiB and its size, without reading the rest', async () => {
    const size = 256 * 1024 * 1024;
    expect((await driver.exec(id, { command: `dd if=/dev/zero of=/workspace/sparse bs=1 count=0 seek=${size} 2>&1` })).exitCode).to.equal(0);
    const t0 = Date.now();
    const head = await driver.readFileHead(id, 'sparse', READ_MAX_BYTES);
    expect(head.size).to.equal(size);
    expect(head.data.length).to.equal(READ_MAX_BYTES);
    const r = await shellAndFileTools().run(call('read_file', { path: 'sparse' }), context(driver, { containerId: id }));
    expect(r.content).to.contain(`[/workspace/sparse is ${size} bytes; this is its first ${READ_MAX_BYTES}`);
    expect(Date.now() - t0).to.be.below(3000);
    // A small file still comes back whole, byte for byte.
    await driver.writeFile(id, 'small.bin', Buffer.from([0, 1, 2, 255]));
    expect(await driver.readFileHead(id, 'small.bin', READ_MAX_BYTES)).to.deep.equal({ data: Buffer.from([0, 1, 2, 255]), size: 4 });
    expect(await driver.readFileHead(id, 'small.bin', 2)).to.deep.equal({ data: Buffer.from([0, 1]), size: 4 });
  });
});

describe("tool exec starts on the sandbox's lane (real engine)", function () {
  this.timeout(30_000);
  const instance = `test-lane-${randomUUID().slice(0, 8)}`;
  const driver = new DockerSandboxDriver({ docker: new Docker(), instance, executor: false });
  const sandboxId = randomUUID();
  let id = '';
  before(async () => {
    id = (await driver.ensure({ sandboxId, projectId: 'p', image: 'troupe-sandbox-minimal:latest' })).id;
  });
  after(async () => {
    for (const c of await driver.list({ instance })) await driver.remove(c.id);
  });

  it('holds the lane for the start only, never starts into a container a round froze, nor once aborted', async () => {
    const ac = new AbortController();
    const lane = laneDriver(driver, sandboxId, ac.signal);
    // A long command: the lane is free again once it runs, well before it ends.
    let started = false;
    const long = lane.exec(id, { command: 'sleep 3; echo done', onStart: () => (started = true) });
    const t0 = Date.now();
    await exclusive(sandboxId, async () => {});
    expect(started).to.equal(true);
    expect(Date.now() - t0).to.be.below(2500);
    expect((await long).stdout).to.contain('done');

    // A pause round queued first: the exec waits for it, sees the frozen container and starts nothing.
    const round = exclusive(sandboxId, () => driver.pause(id));
    const r = await lane.exec(id, { command: 'touch /workspace/ran' });
    await round;
    expect(r).to.include({ aborted: true, exitCode: EXIT_ABORTED, stderr: 'the sandbox is paused' });
    expect((await driver.inspect(id))?.state).to.equal('paused');
    await driver.unpause(id);
    expect((await driver.exec(id, { command: 'test -e /workspace/ran' })).exitCode).to.equal(1);

    // The activation stood down: nothing starts, even in a running container.
    ac.abort('pause');
    expect(await lane.exec(id, { command: 'touch /workspace/ran' })).to.include({ aborted: true, exitCode: EXIT_ABORTED });
    expect((await driver.exec(id, { command: 'test -e /workspace/ran' })).exitCode).to.equal(1);
    expect(busyLanes()).to.equal(0);
  });
});
