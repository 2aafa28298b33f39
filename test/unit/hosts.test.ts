// Host ids name BullMQ queues (`sessions.<id>`, `sandbox-commands.<id>`), which must not contain ':'.
import { expect } from 'chai';
import { derivedHostId, loadConfig } from '../../src/config.js';
import { commandQueueName } from '../../src/commands/protocol.js';

describe('worker host ids', () => {
  it('are derived from the machine and the engine, in characters a queue name may hold', () => {
    expect(derivedHostId('box-1', 'unix:///var/run/docker.sock')).to.equal('box-1-var-run-docker.sock');
    expect(derivedHostId('box', 'tcp://10.0.0.5:2375')).to.equal('box-tcp-10.0.0.5-2375');
    expect(derivedHostId('a:b', 'tcp://[::1]:2375')).to.not.include(':');
    expect(commandQueueName('host-a')).to.equal('sandbox-commands.host-a');
  });

  it('TROUPE_HOST_ID is checked: no colons or spaces', () => {
    expect(() => loadConfig({ TROUPE_HOST_ID: 'a:b' })).to.throw(/TROUPE_HOST_ID/);
    expect(loadConfig({ TROUPE_HOST_ID: 'host-a', DOCKER_HOST: 'unix:///tmp/x.sock' })).to.include({ hostId: 'host-a', hostEngine: 'unix:///tmp/x.sock' });
    expect(loadConfig({}).hostId).to.match(/^[A-Za-z0-9_.-]+$/);
  });
});
