/**
 * ESLint (flat config) with typescript-eslint's recommended rules, not type-aware: the whole tree
 * lints in a few seconds on CI's two cores. `npm run lint:es` runs it; formatting is not its job.
 *
 * typescript-eslint parses with the `typescript` package's JS API, which TypeScript 7 (the native
 * compiler `npm run typecheck` uses, installed as `typescript-7`) does not have: that is why the
 * project also carries TypeScript 6 under the plain `typescript` name (dependency-cruiser parses
 * with it too).
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', '**/node_modules/', 'packages/*/dist/', '.troupe/', 'bench/results/', 'test/faults/results/', 'sandbox-images/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      // Rows from knex and JSON payloads are `Record<string, any>` across the code today; issue 11
      // (point 3) replaces them with typed rows. Until then this rule would flag several hundred
      // lines in files being redesigned, so it stays off rather than being silenced line by line.
      '@typescript-eslint/no-explicit-any': 'off',
      // `_`-prefixed names mark deliberately unused parameters and destructured leftovers.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    // chai's property assertions (`expect(x).to.be.empty`, `.to.be.true`) are expressions by design.
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', process: 'readonly', __dirname: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
