// The fast tier (`npm run test:unit`): pure logic, no Postgres, Redis or Docker, in seconds.
// Unlike .mocharc.cjs it loads no test/support/env.ts or hooks.ts (those start servers and close
// connections): a unit test that needs a service belongs in the integration suite.
module.exports = {
  spec: ['test/unit/**/*.test.ts'],
  'node-option': ['import=tsx'],
  timeout: 10000,
  exit: true,
  reporter: 'spec',
};
