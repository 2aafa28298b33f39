/**
 * Errors of the infrastructure rather than of a request or a session: Postgres, Redis or Docker
 * away for a moment (connection refused/reset/terminated, pg shutdown and connection codes).
 * Jobs retry on them; the API answers 503 with Retry-After.
 */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string; syscall?: string };
  // A Docker engine on a unix socket that is not there (the engine is restarting): as refused.
  if (e?.code === 'ENOENT' && e.syscall === 'connect') return true;
  if (e?.code && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|57P0[1-3]|08\d{3}|53300)$/.test(e.code)) return true;
  return /Connection terminated|connect ECONNREFUSED|connect ENOENT|socket hang up|Container [0-9a-f]+ is not running|Connection is closed|Knex: Timeout acquiring a connection|the database system is (starting up|shutting down)/i.test(e?.message ?? '');
}
