// Loaded by mocha before any test file: the suite uses its own database and Redis key prefix so
// it never touches a developer's data, and quiet logs unless TROUPE_LOG_LEVEL is set.
process.env.DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://troupe:troupe@127.0.0.1:5432/troupe_test';
// A prefix per run: concurrent test runs on one machine must not pick up each other's jobs.
process.env.TROUPE_REDIS_PREFIX ??= `troupe-test-${process.pid}`;
process.env.TROUPE_LOG_LEVEL ??= 'silent';
process.env.TROUPE_DEFAULT_IMAGE ??= 'troupe-sandbox-minimal:latest';
process.env.TROUPE_INSTANCE ??= 'test';
process.env.TROUPE_WEBHOOK_BACKOFF_MS ??= '100';
process.env.TROUPE_ADMIN_USERS ??= 'test-admin';
// The suite's fake model servers, webhook receivers and MCP servers listen on 127.0.0.1, which the
// outbound guard blocks by default: allowed here explicitly. The SSRF tests run without this.
process.env.TROUPE_OUTBOUND_ALLOW ??= '127.0.0.1';
process.env.TROUPE_SKILL_HOSTS ??= 'github.com,raw.githubusercontent.com,127.0.0.1';
