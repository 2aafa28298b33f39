/**
 * Dependency rules: the layers of issue 11 (point 7), checked by `npm run lint:deps` in CI.
 *
 *   npx depcruise src workers --config .dependency-cruiser.cjs
 *
 * Type-only imports count (tsPreCompilationDeps): "services import nothing from http" means the
 * Principal type too. Each rule's `comment` says what it protects; to see why a rule fails, the
 * output names every offending edge (or, for reachability rules, the module that is reached and
 * the path it is reached by).
 */

/** The api process's entry and everything it is made of. src/main.ts (api + worker in one dev
 * process) and workers/ are the worker side and may reach Docker. */
const API = ['^src/server\\.ts$', '^src/http/', '^src/realtime/', '^src/services/'];
/** Docker: the package (and its types) and our driver around it. */
const DOCKER = ['(^|/)node_modules/(@types/)?dockerode/', '^src/runtime/sandbox/'];
/** Transports a service must not depend on: it calls ports instead. */
const TRANSPORTS = ['(^|/)node_modules/(@types/)?(dockerode|bullmq|ioredis|redis)/'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter and hide which layer owns what. Break the cycle (a port, an event, or a smaller module).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'api-never-reaches-docker',
      severity: 'error',
      comment:
        'Only the worker that holds a sandbox touches its container: nothing the api process imports (server, http, realtime, services) may reach dockerode or the sandbox driver, directly or through other modules. Send the worker a command instead.',
      from: { path: API },
      to: { path: DOCKER, reachable: true },
    },
    {
      name: 'repositories-import-no-services',
      severity: 'error',
      comment: 'Repositories hold SQL and typed rows; rules live in services, which call repositories, never the other way round.',
      from: { path: '^src/db/repositories/' },
      to: { path: '^src/services/' },
    },
    {
      name: 'services-import-no-http',
      severity: 'error',
      comment: 'Services hold the rules and know nothing of HTTP: no routes, no HTTP errors, no Principal type from http/auth. Move shared types to the domain layer.',
      from: { path: '^src/services/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'services-reach-no-transports',
      severity: 'error',
      comment:
        'Services import no Redis, queue or Docker client, not even through another module (bus, queue, driver): they call small ports (session commands, events) that the process wires at start.',
      from: { path: '^src/services/' },
      to: { path: TRANSPORTS, reachable: true },
    },
  ],
  options: {
    // Follow our code, stop at packages (they are still recorded, so rules can name them).
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(\\.troupe|bench/results|test/faults/results)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
