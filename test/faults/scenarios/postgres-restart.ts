/** Restart Postgres (pg_ctlcluster) mid-load. */
import { restartPostgres, type Cluster } from '../cluster.js';
import type { FaultResult } from '../report.js';
import { restartUnderLoad } from './service-restart.js';

export function postgresRestarts(c: Cluster, token: string, opts: { inFlight: number; drainMs: number }): Promise<FaultResult> {
  return restartUnderLoad(c, token, { name: 'Restart Postgres mid-load (0 s and 3 s down)', restart: restartPostgres, downs: [0, 3000] }, opts);
}
