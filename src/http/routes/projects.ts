import { defineRoute } from '../registry.js';
import { nonEmpty, obj, uuid } from '../schema.js';
import * as projects from '../../services/projects.js';
import { refuseAgentKey } from '../../services/access.js';

// Creating a project and managing members are for users: an agent API key gets 403 (members go
// through need 'admin' in services/access.ts, which refuses agent keys too).

const role = { type: 'string', enum: ['owner', 'admin', 'member', 'viewer'] } as const;
export const createProjectBody = obj({ name: nonEmpty(200), description: { type: ['string', 'null'], maxLength: 5000 } }, ['name']);
export const addMemberBody = obj({ user_id: nonEmpty(200), role }, ['user_id', 'role']);
export const updateMemberBody = obj({ role }, ['role']);
const projectOut = obj({ id: uuid, name: { type: 'string' }, description: { type: ['string', 'null'] }, role, created_at: { type: 'string' } });

defineRoute({
  method: 'post', path: '/api/v1/projects', tag: 'Projects', summary: 'Create a project (the caller becomes its owner)',
  body: createProjectBody, status: 201, response: projectOut,
  handler: async (_ctx, { principal, body }) => {
    refuseAgentKey(principal);
    return projects.createProject(principal, body);
  },
});
defineRoute({
  method: 'get', path: '/api/v1/projects', tag: 'Projects', summary: "List the caller's projects",
  response: { type: 'array', items: projectOut },
  handler: (_ctx, { principal }) => projects.listProjects(principal),
});
defineRoute({
  method: 'get', path: '/api/v1/projects/:projectId', tag: 'Projects', summary: 'Get a project', response: projectOut,
  handler: (_ctx, { principal, params }) => projects.getProject(principal, params.projectId),
});
defineRoute({
  method: 'get', path: '/api/v1/projects/:projectId/members', tag: 'Projects', summary: 'List project members (users and agents)',
  handler: (_ctx, { principal, params }) => projects.listMembers(principal, params.projectId),
});
defineRoute({
  method: 'post', path: '/api/v1/projects/:projectId/members', tag: 'Projects', summary: 'Add a user as a member (owner/admin)',
  body: addMemberBody, status: 201,
  handler: (_ctx, { principal, params, body }) => projects.addMember(principal, params.projectId, body),
});
defineRoute({
  method: 'patch', path: '/api/v1/projects/:projectId/members/:memberId', tag: 'Projects', summary: "Change a member's role",
  body: updateMemberBody,
  handler: (_ctx, { principal, params, body }) => projects.updateMember(principal, params.projectId, params.memberId, body),
});
defineRoute({
  method: 'delete', path: '/api/v1/projects/:projectId/members/:memberId', tag: 'Projects', summary: 'Remove a member',
  handler: (_ctx, { principal, params }) => projects.removeMember(principal, params.projectId, params.memberId),
});
