import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Every .ts file under a folder, as [path relative to the repo, source]. */
function sources(dir: string): Array<[string, string]> {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
    .map((f) => [f, readFileSync(f, 'utf8')]);
}

const imports = (src: string) => [...src.matchAll(/(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);

describe('runtime shape (imports)', () => {
  const all = [...sources('src'), ...sources('workers')];

  it('only src/runtime/sandbox/ imports dockerode: everything else goes through the SandboxDriver', () => {
    const offenders = all.filter(([f, src]) => !f.startsWith(path.join('src', 'runtime', 'sandbox') + path.sep) && imports(src).includes('dockerode'));
    expect(offenders.map(([f]) => f)).to.deep.equal([]);
  });

  it('the actor and its tools use the driver they are given, never the process-wide one', () => {
    const runtime = all.filter(([f]) => /src[/\\]runtime[/\\](actor|activation-context|prompt|mcp|context)\.ts$|src[/\\]runtime[/\\]tools[/\\]/.test(f));
    expect(runtime.length).to.be.greaterThan(5);
    const offenders = runtime.filter(([, src]) => imports(src).some((i) => /sandbox\/index(\.js)?$/.test(i)));
    expect(offenders.map(([f]) => f)).to.deep.equal([]);
  });

  it('there is one shellQuote', () => {
    const defs = all.filter(([, src]) => /(function\s+shellQuote\b|(const|let)\s+shellQuote\s*=)/.test(src));
    expect(defs.map(([f]) => f)).to.deep.equal([path.join('src', 'lib', 'shell.ts')]);
  });
});
