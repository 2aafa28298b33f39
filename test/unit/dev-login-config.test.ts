// TROUPE_DEV_LOGIN (the dashboard's dev sign-in mints user tokens): off by default, allowed on
// loopback only, said at start-up when on.
import crypto from 'node:crypto';
import { expect } from 'chai';
import { loadConfig, startupNotes } from '../../src/config.js';

describe('config: TROUPE_DEV_LOGIN', () => {
  it('is off by default and on with 1', () => {
    expect(loadConfig({}).devLogin).to.equal(false);
    expect(loadConfig({ TROUPE_DEV_LOGIN: '1' }).devLogin).to.equal(true);
    expect(() => loadConfig({ TROUPE_DEV_LOGIN: 'yes' })).to.throw(/TROUPE_DEV_LOGIN/);
  });

  it('is refused beyond loopback, even with real secrets', () => {
    const real = { HOST: '0.0.0.0', TROUPE_JWT_SECRET: crypto.randomBytes(24).toString('hex'), TROUPE_SECRET_KEY: crypto.randomBytes(32).toString('hex') };
    expect(loadConfig(real).devLogin).to.equal(false);
    expect(() => loadConfig({ ...real, TROUPE_DEV_LOGIN: '1' })).to.throw(/TROUPE_DEV_LOGIN=1 and HOST=0\.0\.0\.0 listens beyond loopback/);
  });

  it('is announced at start', () => {
    expect(startupNotes(loadConfig({ TROUPE_DEV_LOGIN: '1' })).join('\n')).to.match(/dev sign-in is on/);
    expect(startupNotes(loadConfig({})).join('\n')).to.not.match(/dev sign-in/);
  });
});
