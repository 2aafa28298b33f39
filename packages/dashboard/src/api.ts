/**
 * The dashboard's one door to Troupe's REST API: the token (kept in sessionStorage, never in a
 * URL), a fetch wrapper that turns the `{"error": ...}` envelope into an ApiError carrying the
 * server's own words, and precise types for the fields the views use. Every view calls these
 * functions and nothing else, so this module can later be swapped for the `@troupe/client` SDK.
 */

const TOKEN_KEY = 'troupe.token';

export const auth = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer with a 4xx/5xx status: `message` is the envelope's `error`, word for word. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly details?: unknown[]) {
    super(message);
  }
}

type Query = Record<string, string | number | boolean | undefined | null>;

export async function request<T>(method: string, path: string, opts: { body?: unknown; query?: Query; token?: string | null } = {}): Promise<T> {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = opts.token === undefined ? auth.token() : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  } catch {
    throw new ApiError(0, 'The server cannot be reached; check that Troupe is running');
  }
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const message = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    throw new ApiError(res.status, message, body?.details);
  }
  return body as T;
}

const get = <T>(path: string, query?: Query) => request<T>('GET', path, { query });
const post = <T>(path: string, body: unknown = {}, query?: Query) => request<T>('POST', path, { body, query });
const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, { body });
const del = <T>(path: string) => request<T>('DELETE', path);
const enc = encodeURIComponent;

// ---- types (the fields of /openapi.json's responses that the views read) -------------------

export type Role = 'owner' | 'admin' | 'member' | 'viewer';
export type SessionStatus = 'queued' | 'running' | 'idle' | 'paused' | 'completed' | 'stopped' | 'failed';
export const SESSION_STATUSES: SessionStatus[] = ['queued', 'running', 'idle', 'paused', 'completed', 'stopped', 'failed'];
export const isTerminal = (s: string) => s === 'completed' || s === 'stopped' || s === 'failed';

export interface Project { id: string; name: string; description: string | null; role: Role; created_at: string }
export interface Member { id: string; project_id: string; member_type: 'user' | 'agent'; user_id: string | null; agent_id: string | null; role: Role; created_at: string }
export interface SandboxSettings { image?: string | null; memory_mb?: number; cpus?: number; pids?: number; network?: 'none' | 'bridge' }
export interface ScriptTurn { text?: string; tool_calls?: Array<{ name: string; input?: Record<string, unknown> }> }
export interface Script { turns: ScriptTurn[]; token_delay_ms?: number }
export interface McpServer { id: string; server_name: string; transport: 'stdio' | 'http'; command: string | null; args: string[]; url: string | null; env_keys: string[]; is_enabled: boolean }
export interface Skill { id: string; skill_name: string; skill_source: 'inline' | 'github_url'; source_url: string | null; triggers: string[]; is_enabled: boolean }
export interface Agent {
  id: string; name: string; handle: string; kind: 'hosted' | 'external';
  agent_type: { id: string; name: string; slug: string } | null;
  llm_provider: 'anthropic' | 'openai' | 'scripted'; llm_model: string | null; llm_base_url: string | null; has_llm_api_key: boolean;
  system_prompt: string | null; max_iterations: number; timeout_minutes: number; approval: 'auto' | 'require';
  sandbox: SandboxSettings | null; script: Script | null; created_at: string;
  mcp_servers?: McpServer[]; skills?: Skill[];
}
export type AgentInput = Partial<{
  name: string; handle: string; agent_type_id: string | null; kind: 'hosted' | 'external';
  llm_provider: Agent['llm_provider']; llm_model: string | null; llm_base_url: string | null; llm_api_key: string | null;
  system_prompt: string | null; max_iterations: number; timeout_minutes: number; approval: 'auto' | 'require';
  sandbox: SandboxSettings; script: Script | null;
}>;
export interface AgentType { id: string; name: string; slug: string; description?: string | null; default_image?: string | null; project_id?: string | null }
export interface Conversation {
  id: string; project_id: string; agent_id: string; trigger_type: string; task_id: string | null; status: SessionStatus;
  error: string | null; iteration_count: number; sandbox_id: string | null; container_id: string | null; created_at: string; updated_at: string;
}
export interface SessionEvent { id: string; session_id: string; event_index: number; event_type: string; event_source: string; payload: any; created_at: string }
export interface Sandbox { id: string; project_id: string; agent_id: string; state: string; image?: string; container_id?: string | null; created_at: string; [k: string]: unknown }
export interface Session002 { id: string; sandbox_id: string; agent_id: string; project_id: string; state: string; status: SessionStatus; container_id: string | null; created_at: string }
export interface Connection { id: string; agentId: string; withAgentId: string; withAgentName: string | null; approval: string; createdAt: string }
export interface Task { id: string; fromAgentId: string; toAgentId: string; title: string; status: string; approval?: string | null; sessionId?: string | null; createdAt: string; updatedAt: string; [k: string]: unknown }
export interface TaskMessage { id: string; taskId?: string; fromAgentId?: string; content: string; createdAt: string; [k: string]: unknown }
export interface Chat { id: string; agent_id: string; title?: string | null; conversation_id?: string | null; created_at: string; [k: string]: unknown }
export interface ChatMessage { id?: string; role: string; content: string; created_at?: string; [k: string]: unknown }
export interface Pair { id: string; generatorId: string; reviewerId: string; task: string; status: string; drive?: boolean; qualityScore?: number | null; turns?: PairTurn[]; [k: string]: unknown }
export interface PairTurn { id?: string; agentId: string; role: string; content: string; createdAt?: string; [k: string]: unknown }

/** Lists come bare or wrapped (`{conversations}`, `{sessions}` ...): the array either way. */
export function listOf<T>(x: unknown, key?: string): T[] {
  if (Array.isArray(x)) return x as T[];
  if (x && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if (key && Array.isArray(o[key])) return o[key] as T[];
    const arr = Object.values(o).find(Array.isArray);
    if (arr) return arr as T[];
  }
  return [];
}

// ---- calls -------------------------------------------------------------------------------

const P = (pid: string) => `/api/v1/projects/${enc(pid)}`;

export const api = {
  devLogin: (user: string) => request<{ token: string; user: string }>('POST', '/api/v1/dev/login', { body: { user }, token: null }),
  projects: () => get<Project[]>('/api/v1/projects'),
  createProject: (name: string, description?: string) => post<Project>('/api/v1/projects', { name, ...(description ? { description } : {}) }),
  project: (pid: string) => get<Project>(P(pid)),
  members: (pid: string) => get<Member[]>(`${P(pid)}/members`),
  addMember: (pid: string, user_id: string, role: Role) => post<Member>(`${P(pid)}/members`, { user_id, role }),
  updateMember: (pid: string, mid: string, role: Role) => patch<Member>(`${P(pid)}/members/${enc(mid)}`, { role }),
  removeMember: (pid: string, mid: string) => del<unknown>(`${P(pid)}/members/${enc(mid)}`),

  agents: (pid: string) => get<Agent[]>(`${P(pid)}/agents`),
  agent: (pid: string, aid: string) => get<Agent>(`${P(pid)}/agents/${enc(aid)}`),
  createAgent: (pid: string, body: AgentInput) => post<Agent>(`${P(pid)}/agents`, body),
  updateAgent: (pid: string, aid: string, body: AgentInput) => patch<Agent & { secrets_cleared?: string[] }>(`${P(pid)}/agents/${enc(aid)}`, body),
  deleteAgent: (pid: string, aid: string) => del<unknown>(`${P(pid)}/agents/${enc(aid)}`),
  addMcp: (pid: string, aid: string, body: Record<string, unknown>) => post<McpServer>(`${P(pid)}/agents/${enc(aid)}/mcp-servers`, body),
  updateMcp: (pid: string, aid: string, id: string, body: Record<string, unknown>) => patch<McpServer>(`${P(pid)}/agents/${enc(aid)}/mcp-servers/${enc(id)}`, body),
  deleteMcp: (pid: string, aid: string, id: string) => del<unknown>(`${P(pid)}/agents/${enc(aid)}/mcp-servers/${enc(id)}`),
  addSkill: (pid: string, aid: string, body: Record<string, unknown>) => post<Skill>(`${P(pid)}/agents/${enc(aid)}/skills`, body),
  updateSkill: (pid: string, aid: string, id: string, body: Record<string, unknown>) => patch<Skill>(`${P(pid)}/agents/${enc(aid)}/skills/${enc(id)}`, body),
  deleteSkill: (pid: string, aid: string, id: string) => del<unknown>(`${P(pid)}/agents/${enc(aid)}/skills/${enc(id)}`),
  agentTypes: (pid: string) => get<unknown>('/api/v1/agent-types', { project_id: pid }).then((x) => listOf<AgentType>(x)),
  createAgentType: (pid: string, body: Record<string, unknown>) => post<AgentType>(`${P(pid)}/agent-types`, body),

  conversations: (pid: string, aid: string, limit = 50) => get<{ conversations: Conversation[]; total: number }>(`${P(pid)}/agents/${enc(aid)}/conversations`, { limit }),
  conversation: (pid: string, cid: string) => get<Conversation>(`${P(pid)}/conversations/${enc(cid)}`),
  events: (pid: string, cid: string, limit: number, offset: number) =>
    get<{ events: SessionEvent[]; total: number; has_more: boolean }>(`${P(pid)}/conversations/${enc(cid)}/events`, { limit, offset }),
  control: (pid: string, cid: string, action: 'pause' | 'resume' | 'stop') => post<{ status: SessionStatus }>(`${P(pid)}/conversations/${enc(cid)}/${action}`),
  interrupt: (sid: string) => post<unknown>(`/api/v1/sessions/${enc(sid)}/interrupt`),
  sendMessage: (pid: string, cid: string, message: string) => post<{ status: string; message_id: string; event_index: number }>(`${P(pid)}/conversations/${enc(cid)}/message`, { message }),
  startSession: (pid: string, agentId: string, message?: string) => post<Session002>('/api/v1/sessions', { agent_id: agentId, project_id: pid, ...(message ? { message } : {}) }),

  sandboxes: (pid: string) => get<unknown>('/api/v1/sandboxes', { project_id: pid }).then((x) => listOf<Sandbox>(x)),
  sandbox: (id: string) => get<Sandbox>(`/api/v1/sandboxes/${enc(id)}`),
  sandboxSessions: (id: string) => get<unknown>(`/api/v1/sandboxes/${enc(id)}/sessions`).then((x) => listOf<Session002>(x)),
  sandboxAction: (id: string, action: 'pause' | 'resume') => post<Sandbox>(`/api/v1/sandboxes/${enc(id)}/${action}`),
  deleteSandbox: (id: string) => del<unknown>(`/api/v1/sandboxes/${enc(id)}`),

  chats: (pid: string, aid: string) => get<unknown>(`${P(pid)}/agents/${enc(aid)}/chat-sessions`).then((x) => listOf<Chat>(x, 'chat_sessions')),
  startChat: (pid: string, aid: string, message: string) => post<Chat>(`${P(pid)}/agents/${enc(aid)}/chat-sessions`, { message }),
  chatMessages: (pid: string, chatId: string) => get<unknown>(`${P(pid)}/chat-sessions/${enc(chatId)}/messages`).then((x) => listOf<ChatMessage>(x, 'messages')),
  sendChat: (pid: string, chatId: string, message: string) => post<unknown>(`${P(pid)}/chat-sessions/${enc(chatId)}/messages`, { message }),

  // The hub acts as one of the project's agents (asAgentId) for a user token.
  connections: (asAgentId: string) => get<unknown>('/api/v1/connections', { asAgentId }).then((x) => listOf<Connection>(x)),
  pairingCode: (asAgentId: string) => post<{ code: string; expiresAt: string }>('/api/v1/pairing-codes', { asAgentId }),
  connect: (asAgentId: string, pairingCode: string) => post<Connection>('/api/v1/connections', { asAgentId, pairingCode }),
  disconnect: (asAgentId: string, id: string) => request<unknown>('DELETE', `/api/v1/connections/${enc(id)}`, { query: { asAgentId } }),
  tasks: (asAgentId: string, role?: 'from' | 'to') => get<unknown>('/api/v1/tasks', { asAgentId, role }).then((x) => listOf<Task>(x)),
  createTask: (asAgentId: string, toAgentId: string, title: string, message: string) => post<Task>('/api/v1/tasks', { asAgentId, toAgentId, title, message }),
  taskAction: (asAgentId: string, id: string, action: 'approve' | 'reject' | 'cancel') => post<Task>(`/api/v1/tasks/${enc(id)}/${action}`, { asAgentId }),
  taskMessages: (asAgentId: string, id: string) => get<unknown>(`/api/v1/tasks/${enc(id)}/messages`, { asAgentId }).then((x) => listOf<TaskMessage>(x)),
  sendTaskMessage: (asAgentId: string, id: string, content: string) => post<TaskMessage>(`/api/v1/tasks/${enc(id)}/messages`, { asAgentId, content }),

  pairs: (pid: string) => get<unknown>('/api/v1/pair-sessions', { project_id: pid }).then((x) => listOf<Pair>(x, 'pairSessions')),
  pair: (id: string) => get<Pair>(`/api/v1/pair-sessions/${enc(id)}`),
  createPair: (pid: string, body: { generatorId: string; reviewerId: string; task: string; drive?: boolean; maxTurns?: number }) => post<Pair>('/api/v1/pair-sessions', { ...body, project_id: pid }),
  endPair: (id: string, outcome: 'completed' | 'abandoned', qualityScore?: number | null) => post<Pair>(`/api/v1/pair-sessions/${enc(id)}/end`, { outcome, ...(qualityScore == null ? {} : { qualityScore }) }),
};
