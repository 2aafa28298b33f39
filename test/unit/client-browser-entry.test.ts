/**
 * The client package's browser entry (`@troupe/client/browser`, which the dashboard bundles)
 * must not reach Node-only code: node: built-ins, the CLI and its config files, webhook HMACs,
 * the agent WebSocket (`ws`).
 * Read from the sources' own import statements, so a new import fails here before a bundle does.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/client/src');
const ALLOWED_PACKAGES = new Set(['openapi-fetch', 'eventsource-parser', 'socket.io-client']);

/** Every module reached from `entry` through value imports and re-exports (type-only ones are erased). */
function graph(entry: string) {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)) {
      const [, typeOnly, spec] = m;
      if (typeOnly) continue;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  };
  visit(path.join(SRC, entry));
  return { files: [...files].map((f) => path.relative(SRC, f)).sort(), packages: [...packages].sort() };
}

describe('@troupe/client/browser', () => {
  it('reaches no Node built-in, no CLI or config code and no webhook verification', () => {
    const { files, packages } = graph('browser.ts');
    expect(files).to.include.members(['client.ts', 'http.ts', 'stream.ts', 'realtime.ts', 'errors.ts']);
    for (const nodeOnly of ['cli.ts', 'config.ts', 'webhooks.ts', 'render.ts', 'agent-connection.ts', 'node-client.ts']) expect(files).to.not.include(nodeOnly);
    expect(packages.filter((p) => !ALLOWED_PACKAGES.has(p)), 'packages outside the browser-safe list').to.deep.equal([]);
  });

  it('the check sees what the Node entry adds (so it can fail)', () => {
    const { files, packages } = graph('index.ts');
    expect(files).to.include.members(['webhooks.ts', 'agent-connection.ts']);
    expect(packages).to.include.members(['node:crypto', 'ws']);
  });
});
