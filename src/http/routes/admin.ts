/** Operators' routes (admins: TROUPE_ADMIN_USERS): the worker hosts of the cluster (issue 13). */
import { defineRoute } from '../registry.js';
import { isAdmin, type Principal } from '../auth.js';
import { forbidden } from '../../domain/errors.js';
import { obj } from '../schema.js';
import { drainHost, listHosts } from '../../services/hosts.js';

const TAG = 'Admin';
const requireAdmin = (p: Principal) => {
  if (!isAdmin(p)) throw forbidden('Host administration is for admins (TROUPE_ADMIN_USERS)');
};

defineRoute({
  method: 'get', path: '/api/v1/admin/hosts', tag: TAG, summary: 'Worker hosts: engine, capacity, state, sandboxes by state, heartbeat age',
  handler: async (_ctx, { principal }) => {
    requireAdmin(principal);
    return listHosts();
  },
});

defineRoute({
  method: 'post', path: '/api/v1/admin/hosts/:id/drain', tag: TAG, status: 202, body: obj({}),
  summary: 'Drain a host: no new placements, running turns finish, idle and paused sandboxes move with their files, then it exits',
  handler: async (_ctx, { principal, params }) => {
    requireAdmin(principal);
    return drainHost(params.id);
  },
});
