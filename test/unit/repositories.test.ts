import { expect } from 'chai';
import { fullNameOf } from '../../src/lib/forges/index.js';
import { redact } from '../../src/runtime/repos/git.js';
import { branchFor } from '../../src/runtime/repos/workspace.js';
import { BRANCH_RE } from '../../src/services/repositories.js';

describe('repositories: names, branches, redaction', () => {
  it('fullNameOf: owner/name from a clone URL, null when the path is not exactly that', () => {
    expect(fullNameOf('https://github.com/acme/web.git')).to.equal('acme/web');
    expect(fullNameOf('https://ghe.example.com/acme/web')).to.equal('acme/web');
    expect(fullNameOf('http://127.0.0.1:9000/acme/web.git/')).to.equal('acme/web');
    for (const bad of ['https://github.com/acme', 'https://github.com/a/b/c', 'https://github.com/../b', 'not a url']) expect(fullNameOf(bad), bad).to.equal(null);
  });

  it('branchFor: agent/<slug> of a title or message, at most 40 characters of whole words', () => {
    expect(branchFor('Implement OAuth login')).to.equal('agent/implement-oauth-login');
    expect(branchFor('  Fix: the bug #42 (again)!! ')).to.equal('agent/fix-the-bug-42-again');
    expect(branchFor('')).to.equal('agent/work');
    expect(branchFor(null)).to.equal('agent/work');
    const long = branchFor('word '.repeat(50));
    expect(long.length - 'agent/'.length).to.be.at.most(40);
    expect(long).to.match(/^agent\/word(-word)+$/);
    expect(BRANCH_RE.test(branchFor('Ünïcode and émoji 🎉 titles'))).to.equal(true);
  });

  it('BRANCH_RE refuses what git would not take as a branch', () => {
    for (const ok of ['main', 'release/1.2', 'agent/x-y_z']) expect(BRANCH_RE.test(ok), ok).to.equal(true);
    for (const bad of ['a..b', '/a', 'a/', 'a//b', '-x', 'a b', 'x.lock', 'a@{1}', 'a~1', 'a^', 'a:b', '']) expect(BRANCH_RE.test(bad), bad).to.equal(false);
  });

  it('redact: the token and its encoded forms (basic auth, base64, URL-encoded) become ***', () => {
    const token = 'ghp_s3cr3t/+=';
    const text = [
      `fatal: could not read from https://x-access-token:${encodeURIComponent(token)}@host/a.git`,
      `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`,
      `raw ${token} b64 ${Buffer.from(token).toString('base64')}`,
    ].join('\n');
    const out = redact(text, token);
    expect(out).to.not.contain(token).and.not.contain(encodeURIComponent(token)).and.not.contain(Buffer.from(token).toString('base64'));
    expect(out.match(/\*\*\*/g)).to.have.length(4);
    expect(redact('nothing here', undefined)).to.equal('nothing here');
  });
});
