/**
 * The dashboard's one door to Troupe's REST API, and it is the public client: `@troupe/client`
 * (its browser entry), so every call, parameter and body is typed from /openapi.json and every
 * failure is a TroupeError carrying the `{"error": ...}` envelope's own words, exactly as any
 * other client gets them. The token is kept in sessionStorage (this tab only) and sent in the
 * Authorization header, never in a URL. The views call `api.*` and read the client's types.
 */
import { TroupeClient, type BodyOf, type Project } from '@troupe/client/browser';

export {
  TroupeError, TERMINAL_STATUSES,
  type Agent, type AgentScript, type AgentType, type ChatMessage, type ChatSession, type Connection, type Conversation, type McpServer,
  type Member, type PairSession, type Project, type Sandbox, type SandboxSettings, type Session, type SessionEvent, type SessionStatus,
  type Skill, type Task, type TaskMessage,
} from '@troupe/client/browser';

const TOKEN_KEY = 'troupe.token';

export const auth = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
    client = undefined;
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    client = undefined;
  },
};

let client: TroupeClient | undefined;
/** The client for the signed-in token (made again when the token changes). */
export function troupe(): TroupeClient {
  return (client ??= new TroupeClient({ baseUrl: location.origin, token: auth.token() }));
}

// ---- types derived from the API's own schemas -----------------------------------------------

export type Role = Project['role'];
/** What the agent form sends: a create's fields, all of them optional on an edit. */
export type AgentInput = Partial<BodyOf<'/api/v1/projects/{projectId}/agents', 'post'>>;
export type McpInput = BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers', 'post'>;
export type SkillInput = BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/skills', 'post'>;
export const SESSION_STATUSES = ['queued', 'running', 'idle', 'paused', 'completed', 'stopped', 'failed'] as const;
export const isTerminal = (s: string) => s === 'completed' || s === 'stopped' || s === 'failed';

// ---- calls -------------------------------------------------------------------------------

export const api = {
  /** Checks a token before it is kept: a wrong one fails here with the server's words. */
  checkToken: (token: string) => new TroupeClient({ baseUrl: location.origin, token }).projects.list(),
  devLogin: (user: string) => {
    const t = new TroupeClient({ baseUrl: location.origin, token: null }).transport;
    return t.unwrap<{ token: string; user: string }>(t.api.POST('/api/v1/dev/login', { body: { user } }));
  },
  projects: () => troupe().projects.list(),
  createProject: (name: string, description?: string) => troupe().projects.create({ name, ...(description ? { description } : {}) }),
  project: (pid: string) => troupe().projects.get(pid),
  members: (pid: string) => troupe().projects.members(pid),
  addMember: (pid: string, user_id: string, role: Role) => troupe().projects.addMember(pid, { user_id, role }),
  updateMember: (pid: string, mid: string, role: Role) => troupe().projects.updateMember(pid, mid, { role }),
  removeMember: (pid: string, mid: string) => troupe().projects.removeMember(pid, mid),

  agents: (pid: string) => troupe().agents.list(pid),
  agent: (pid: string, aid: string) => troupe().agents.get(pid, aid),
  // The form requires a name; a missing one is the server's 400 to say.
  createAgent: (pid: string, body: AgentInput) => troupe().agents.create(pid, { ...body, name: body.name ?? '' }),
  updateAgent: (pid: string, aid: string, body: AgentInput) => troupe().agents.update(pid, aid, body),
  deleteAgent: (pid: string, aid: string) => troupe().agents.delete(pid, aid),
  addMcp: (pid: string, aid: string, body: McpInput) => troupe().agents.mcpServers.create(pid, aid, body),
  updateMcp: (pid: string, aid: string, id: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers/{serverId}', 'patch'>) =>
    troupe().agents.mcpServers.update(pid, aid, id, body),
  deleteMcp: (pid: string, aid: string, id: string) => troupe().agents.mcpServers.delete(pid, aid, id),
  addSkill: (pid: string, aid: string, body: SkillInput) => troupe().agents.skills.create(pid, aid, body),
  updateSkill: (pid: string, aid: string, id: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/skills/{skillId}', 'patch'>) =>
    troupe().agents.skills.update(pid, aid, id, body),
  deleteSkill: (pid: string, aid: string, id: string) => troupe().agents.skills.delete(pid, aid, id),
  agentTypes: (pid: string) => troupe().agents.types(pid),
  createAgentType: (pid: string, body: BodyOf<'/api/v1/projects/{projectId}/agent-types', 'post'>) => troupe().agents.createType(pid, body),

  conversations: (pid: string, aid: string, limit = 50) => troupe().agents.conversations(pid, aid, { limit }),
  conversation: (pid: string, cid: string) => troupe().sessions.conversation(pid, cid),
  events: (pid: string, cid: string, limit: number, offset: number) => troupe().sessions.events(pid, cid, { limit, offset }),
  control: (pid: string, cid: string, action: 'pause' | 'resume' | 'stop') => troupe().sessions[action](pid, cid),
  interrupt: (sid: string) => troupe().sessions.interrupt(sid),
  sendMessage: (pid: string, cid: string, message: string) => troupe().sessions.message(pid, cid, message),
  startSession: (pid: string, agentId: string, message?: string) => troupe().sessions.create({ agent_id: agentId, project_id: pid, ...(message ? { message } : {}) }),

  sandboxes: (pid: string) => troupe().sandboxes.list({ project_id: pid }),
  sandbox: (id: string) => troupe().sandboxes.get(id),
  sandboxSessions: (id: string) => troupe().sandboxes.sessions(id),
  sandboxAction: (id: string, action: 'pause' | 'resume') => troupe().sandboxes[action](id),
  deleteSandbox: (id: string) => troupe().sandboxes.delete(id),

  chats: (pid: string, aid: string) => troupe().chats.list(pid, aid).then((r) => r.chat_sessions),
  startChat: (pid: string, aid: string, message: string) => troupe().chats.create(pid, aid, message),
  chatMessages: (pid: string, chatId: string) => troupe().chats.messages(pid, chatId).then((r) => r.messages),
  sendChat: (pid: string, chatId: string, message: string) => troupe().chats.send(pid, chatId, message),

  // The hub acts as one of the project's agents (asAgentId) for a user token.
  connections: (asAgentId: string) => troupe().hub.connections({ asAgentId }),
  pairingCode: (asAgentId: string) => troupe().hub.createPairingCode({ asAgentId }),
  connect: (asAgentId: string, pairingCode: string) => troupe().hub.connect({ asAgentId, pairingCode }),
  disconnect: (asAgentId: string, id: string) => troupe().hub.disconnect(id, { asAgentId }),
  tasks: (asAgentId: string, role?: 'from' | 'to') => troupe().hub.tasks.list({ asAgentId, ...(role ? { role } : {}) }),
  createTask: (asAgentId: string, toAgentId: string, title: string, message: string) => troupe().hub.tasks.create({ asAgentId, toAgentId, title, message }),
  taskAction: (asAgentId: string, id: string, action: 'approve' | 'reject' | 'cancel') => troupe().hub.tasks[action](id, { asAgentId }),
  taskMessages: (asAgentId: string, id: string) => troupe().hub.tasks.messages(id, { asAgentId }),
  sendTaskMessage: (asAgentId: string, id: string, content: string) => troupe().hub.tasks.send(id, { asAgentId, content }),

  pairs: (pid: string) => troupe().pairs.list({ project_id: pid }).then((r) => r.pairSessions),
  pair: (id: string) => troupe().pairs.get(id),
  createPair: (pid: string, body: { generatorId: string; reviewerId: string; task: string; drive?: boolean; maxTurns?: number }) => troupe().pairs.create({ ...body, project_id: pid }),
  endPair: (id: string, outcome: 'completed' | 'abandoned', qualityScore?: number | null) => troupe().pairs.end(id, { outcome, ...(qualityScore == null ? {} : { qualityScore }) }),
};
