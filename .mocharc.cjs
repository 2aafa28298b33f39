// mocha runs the TypeScript sources directly through tsx. test/support/env.ts points the suite
// at the test database before anything reads config; root hooks close shared connections.
module.exports = {
  spec: ['test/**/*.test.ts'],
  // The unit tier has its own config (.mocharc.unit.cjs, `npm run test:unit`); CI runs it first.
  ignore: ['test/unit/**'],
  'node-option': ['import=tsx'],
  require: ['test/support/env.ts', 'test/support/hooks.ts'],
  timeout: 60000,
  exit: true,
  reporter: 'spec',
};
