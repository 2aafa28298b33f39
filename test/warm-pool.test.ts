import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import Docker from 'dockerode';
import { config } from '../src/config.js';
import { db } from '../src/db/knex.js';
import { log } from '../src/log.js';
import { removeOrphans } from '../src/runtime/reaper.js';
import { DockerSandboxDriver } from '../src/runtime/sandbox/docker-driver.js';
import type { SandboxSpec } from '../src/runtime/sandbox/driver.js';
import { call, newAgent, newProject, sessionWorker, waitFor } from './support/harness.js';

// The warm pool against the real engine: what Docker reports is what is asserted.
const IMAGE = process.env.TROUPE_DEFAULT_IMAGE ?? 'troupe-sandbox-minimal:latest';
const docker = new Docker();

async function poolContainers(instance: string) {
  const found = await docker.listContainers({ all: true, filters: { label: [`troupe.instance=${instance}`, 'troupe.pool'] } });
  return found.filter((c) => c.Names[0]?.startsWith('/troupe-pool-'));
}

describe('warm pool (real Docker engine)', function () {
  this.timeout(60_000);

  describe('driver', () => {
    const instance = `test-pool-${randomUUID().slice(0, 8)}`;
    const driver = new DockerSandboxDriver({ docker, instance });
    const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
      sandboxId: randomUUID(), projectId: 'proj-1', image: IMAGE, memoryMb: 256, cpus: 0.5, pidsLimit: 64, ...over,
    });

    before(() => {
      driver.startWarmPool({ size: 1, maxAgeMs: 60_000 }, [spec()]);
    });
    after(async () => {
      await driver.stopWarmPool();
      for (const c of await driver.list({ instance })) await driver.remove(c.id);
    });

    it('keeps paused containers ready and hands one out renamed, running and limited', async () => {
      const [pooled] = await waitFor('a paused pool container', async () => {
        const cs = await poolContainers(instance);
        return cs.length === 1 && cs[0].State === 'paused' ? cs : null;
      });
      const s = spec();
      const info = await driver.ensure(s);
      expect(info.id).to.equal(pooled.Id);
      const inspected = await docker.getContainer(info.id).inspect();
      expect(inspected.Name).to.equal(`/troupe-sbx-${s.sandboxId}`);
      expect(inspected.State.Status).to.equal('running');
      expect(inspected.HostConfig.Memory).to.equal(256 * 1024 * 1024);
      expect(inspected.HostConfig.NanoCpus).to.equal(0.5e9);
      expect(inspected.HostConfig.NetworkMode).to.equal('none');
      expect(inspected.HostConfig.CapDrop).to.deep.equal(['ALL']);
      // Found by name although it has no sandbox label; ensure() again returns the same one.
      expect((await driver.find(s.sandboxId))?.id).to.equal(info.id);
      expect((await driver.ensure(s)).id).to.equal(info.id);
      const r = await driver.exec(info.id, { command: 'echo pooled && id -u' });
      expect(r).to.include({ exitCode: 0 });
      expect(r.stdout).to.equal('pooled\n1000\n');

      // The pool refills with a fresh container.
      const [next] = await waitFor('the pool to refill', async () => {
        const cs = await poolContainers(instance);
        return cs.length === 1 && cs[0].State === 'paused' ? cs : null;
      });
      expect(next.Id).to.not.equal(pooled.Id);
    });

    it('does not pool sandboxes with env, network or other limits, nor when the pooled container vanished', async () => {
      const [pooled] = await waitFor('a paused pool container', async () => {
        const cs = await poolContainers(instance);
        return cs.length === 1 && cs[0].State === 'paused' ? cs : null;
      });
      const withEnv = await driver.ensure(spec({ env: { A: '1' } }));
      const bridged = await driver.ensure(spec({ network: 'bridge' }));
      expect(withEnv.id).to.not.equal(pooled.Id);
      expect(bridged.id).to.not.equal(pooled.Id);
      expect((await driver.exec(withEnv.id, { command: 'echo $A' })).stdout).to.equal('1\n');

      // Someone removed the pooled container behind the pool's back: a fresh one is created.
      await docker.getContainer(pooled.Id).remove({ force: true });
      const s = spec();
      const fresh = await driver.ensure(s);
      expect(fresh.id).to.not.equal(pooled.Id);
      expect((await docker.getContainer(fresh.id).inspect()).State.Status).to.equal('running');
      expect(fresh.labels['troupe.sandbox']).to.equal(s.sandboxId);
    });

    it('never hands out a pooled container that died (killed, or the engine restarted)', async () => {
      const [pooled] = await waitFor('a paused pool container', async () => {
        const cs = await poolContainers(instance);
        return cs.length === 1 && cs[0].State === 'paused' ? cs : null;
      });
      // A killed paused container is "exited"; unpausing it says "not paused", like a running one.
      const dead = docker.getContainer(pooled.Id);
      await dead.unpause();
      await dead.kill();
      await dead.wait();
      const s = spec();
      const info = await driver.ensure(s);
      expect(info.id).to.not.equal(pooled.Id);
      const inspected = await docker.getContainer(info.id).inspect();
      expect(inspected.State.Status).to.equal('running');
      expect(inspected.Name).to.equal(`/troupe-sbx-${s.sandboxId}`);
      expect((await driver.exec(info.id, { command: 'echo alive' })).stdout).to.equal('alive\n');
      // The dead one is gone, not left holding the sandbox's name.
      const gone = await dead.inspect().then(() => false, (err: { statusCode?: number }) => err.statusCode === 404);
      expect(gone).to.equal(true);
    });

    it('removes its containers when stopped', async () => {
      await waitFor('a pool container', async () => (await poolContainers(instance)).length === 1);
      await driver.stopWarmPool();
      expect(await poolContainers(instance)).to.deep.equal([]);
    });
  });

  describe('sessions', () => {
    before(async () => {
      await sessionWorker();
    });

    it('a new session runs in a pooled container, and the reaper leaves live pools alone', async () => {
      const instance = config.instance;
      const ready = await waitFor('the worker pool', async () => {
        const cs = await poolContainers(instance);
        return cs.some((c) => c.State === 'paused') ? cs.filter((c) => c.State === 'paused').map((c) => c.Id) : null;
      });
      // The reaper must not take a live worker's pool for orphans.
      await removeOrphans(log);
      const still = (await poolContainers(instance)).map((c) => c.Id);
      expect(still).to.include.members(ready);

      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, {
        script: { turns: [{ text: 'ok', tool_calls: [{ name: 'bash', input: { command: 'echo warm' } }] }, { text: 'done' }] },
      });
      const r = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.handle, project_id: projectId, message: 'go' } });
      expect(r.status).to.equal(201);
      await waitFor('idle', async () => (await db('sessions').where({ id: r.body.id }).first())?.status === 'idle');
      const row = await db('sessions as s').join('sandboxes as sb', 'sb.id', 's.sandbox_id').where('s.id', r.body.id).first('sb.container_id', 'sb.id as sandbox_id');
      expect(ready).to.include(row.container_id);
      const c = await docker.getContainer(row.container_id).inspect();
      expect(c.Name).to.equal(`/troupe-sbx-${row.sandbox_id}`);
      const result = await db('session_events').where({ session_id: r.body.id, event_type: 'tool_result' }).first();
      expect(result.payload.content).to.contain('warm');

      // Its owning session is live, so the reaper keeps it; once stopped, the reaper removes it.
      await removeOrphans(log);
      expect((await docker.getContainer(row.container_id).inspect()).State.Status).to.equal('running');
      await db('sessions').where({ id: r.body.id }).update({ status: 'stopped' });
      await removeOrphans(log);
      expect(await docker.getContainer(row.container_id).inspect().catch((e) => e.statusCode)).to.equal(404);
    });

    it('the reaper removes pool containers old enough that their owner must be gone', async () => {
      const orphanDriver = new DockerSandboxDriver({ docker, instance: config.instance });
      orphanDriver.startWarmPool({ size: 1, maxAgeMs: 600_000 }, [{ sandboxId: 'x', projectId: 'x', image: IMAGE, memoryMb: 128 }]);
      const orphan = await waitFor('an orphan-to-be pool container', async () => {
        const cs = await poolContainers(config.instance);
        return cs.find((c) => c.Labels['troupe.pool']?.includes('|128|'))?.Id;
      });
      await removeOrphans(log, { poolMaxAgeSeconds: 0 }); // every pool container counts as abandoned
      expect(await docker.getContainer(orphan).inspect().catch((e) => e.statusCode)).to.equal(404);
      await orphanDriver.stopWarmPool();
    });

    it('the reaper removes exited pool containers at once (e.g. after the engine restarted), young or old', async () => {
      const owner = new DockerSandboxDriver({ docker, instance: config.instance });
      owner.startWarmPool({ size: 1, maxAgeMs: 600_000 }, [{ sandboxId: 'x', projectId: 'x', image: IMAGE, memoryMb: 144 }]);
      const pooled = await waitFor('a pool container', async () => {
        const cs = await poolContainers(config.instance);
        return cs.find((c) => c.Labels['troupe.pool']?.includes('|144|') && c.State === 'paused')?.Id;
      });
      await owner.stopWarmPool().catch(() => {});
      // Stopped pools remove their own; recreate the leftover an engine restart would leave.
      const leftover = await docker.createContainer({ Image: IMAGE, name: `troupe-pool-exited-${Date.now()}`, Cmd: ['true'], Labels: { 'troupe.managed': 'true', 'troupe.instance': config.instance, 'troupe.pool': 'x|144|' } });
      await leftover.start();
      await leftover.wait();
      expect((await leftover.inspect()).State.Status).to.equal('exited');
      await removeOrphans(log); // default age limit: young containers stay unless they exited
      expect(await leftover.inspect().catch((e) => e.statusCode)).to.equal(404);
      expect(pooled).to.be.a('string');
    });
  });
});
