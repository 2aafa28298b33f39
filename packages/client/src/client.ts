/**
 * TroupeClient: one object per API base URL and token, with a resource per route family. Every
 * method is a typed call through openapi-fetch (paths, parameters and bodies from the generated
 * types), answered with the types in types.ts, failing with a TroupeError.
 *
 *   const troupe = new TroupeClient({ baseUrl: 'http://localhost:3000', token });
 *   const project = await troupe.projects.create({ name: 'demo' });
 *   const s = await troupe.sessions.create({ agent_id: 'dev-bot', project_id: project.id, message: 'hi' });
 *   for await (const e of troupe.sessions.stream(s.id)) if (e.type === 'text_delta') process.stdout.write(e.data.delta);
 */
import { Transport, type ClientOptions } from './http.js';
import { streamSession, type StreamOptions } from './stream.js';
import { ProjectSubscription, type SubscribeOptions } from './realtime.js';
import { TroupeError } from './errors.js';
import {
  TERMINAL_STATUSES,
  type Agent, type AgentType, type ApiKey, type BodyOf, type ChatMessage, type ChatSession, type Connection, type Conversation, type Member,
  type Message, type MessageAccepted, type NewApiKey, type PairingCode, type PairSession, type PairTurn, type Project, type QueryOf,
  type Sandbox, type Session, type Session001, type SessionEvent, type SessionWithMessages, type Skill, type McpServer, type Task,
  type TaskMessage, type UpdatesPage,
} from './types.js';

/** Extra options of a create or a send: your own Idempotency-Key (one is made for you otherwise). */
export interface IdempotentOptions { idempotencyKey?: string }
const keyHeader = (o?: IdempotentOptions) => (o?.idempotencyKey ? { 'Idempotency-Key': o.idempotencyKey } : undefined);

export class Resource {
  constructor(protected readonly t: Transport) {}
}

export class Projects extends Resource {
  list(): Promise<Project[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects'));
  }
  get(projectId: string): Promise<Project> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}', { params: { path: { projectId } } }));
  }
  create(body: BodyOf<'/api/v1/projects', 'post'>): Promise<Project> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects', { body }));
  }
  members(projectId: string): Promise<Member[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/members', { params: { path: { projectId } } }));
  }
  addMember(projectId: string, body: BodyOf<'/api/v1/projects/{projectId}/members', 'post'>): Promise<Member> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/members', { params: { path: { projectId } }, body }));
  }
  updateMember(projectId: string, memberId: string, body: BodyOf<'/api/v1/projects/{projectId}/members/{memberId}', 'patch'>): Promise<Member> {
    return this.t.unwrap(this.t.api.PATCH('/api/v1/projects/{projectId}/members/{memberId}', { params: { path: { projectId, memberId } }, body }));
  }
  removeMember(projectId: string, memberId: string): Promise<unknown> {
    return this.t.unwrap(this.t.api.DELETE('/api/v1/projects/{projectId}/members/{memberId}', { params: { path: { projectId, memberId } } }));
  }
  /**
   * The project's Socket.IO room (or one conversation's, with `conversationId`): resolves once
   * the server has acknowledged the subscription; iterate it or use `.on(event, handler)`.
   */
  subscribe(projectId: string, opts: SubscribeOptions = {}): Promise<ProjectSubscription> {
    const target: Record<string, string> = opts.conversationId ? { conversation_id: opts.conversationId } : { project_id: projectId };
    return ProjectSubscription.open(this.t.baseUrl, this.t.token ?? '', target, opts.timeoutMs);
  }
}

export class Agents extends Resource {
  list(projectId: string): Promise<Agent[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents', { params: { path: { projectId } } }));
  }
  /** By id or handle, with its MCP servers and skills. */
  get(projectId: string, agentId: string): Promise<Agent> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents/{agentId}', { params: { path: { projectId, agentId } } }));
  }
  create(projectId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents', 'post'>): Promise<Agent> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents', { params: { path: { projectId } }, body }));
  }
  update(projectId: string, agentId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}', 'patch'>): Promise<Agent & { secrets_cleared?: string[] }> {
    return this.t.unwrap(this.t.api.PATCH('/api/v1/projects/{projectId}/agents/{agentId}', { params: { path: { projectId, agentId } }, body }));
  }
  delete(projectId: string, agentId: string): Promise<{ id: string; deleted: true; stopped_sessions: number }> {
    return this.t.unwrap(this.t.api.DELETE('/api/v1/projects/{projectId}/agents/{agentId}', { params: { path: { projectId, agentId } } }));
  }
  conversations(projectId: string, agentId: string, query: QueryOf<'/api/v1/projects/{projectId}/agents/{agentId}/conversations', 'get'> = {}): Promise<{ conversations: Conversation[]; total: number }> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents/{agentId}/conversations', { params: { path: { projectId, agentId }, query } }));
  }
  readonly apiKeys = {
    create: (projectId: string, agentId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/api-keys', 'post'> = {}): Promise<NewApiKey> =>
      this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents/{agentId}/api-keys', { params: { path: { projectId, agentId } }, body })),
    list: (projectId: string, agentId: string): Promise<ApiKey[]> =>
      this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents/{agentId}/api-keys', { params: { path: { projectId, agentId } } })),
    revoke: (projectId: string, agentId: string, keyId: string): Promise<unknown> =>
      this.t.unwrap(this.t.api.DELETE('/api/v1/projects/{projectId}/agents/{agentId}/api-keys/{keyId}', { params: { path: { projectId, agentId, keyId } } })),
  };
  readonly mcpServers = {
    create: (projectId: string, agentId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers', 'post'>): Promise<McpServer> =>
      this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers', { params: { path: { projectId, agentId } }, body })),
    update: (projectId: string, agentId: string, serverId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers/{serverId}', 'patch'>): Promise<McpServer> =>
      this.t.unwrap(this.t.api.PATCH('/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers/{serverId}', { params: { path: { projectId, agentId, serverId } }, body })),
    delete: (projectId: string, agentId: string, serverId: string): Promise<unknown> =>
      this.t.unwrap(this.t.api.DELETE('/api/v1/projects/{projectId}/agents/{agentId}/mcp-servers/{serverId}', { params: { path: { projectId, agentId, serverId } } })),
  };
  readonly skills = {
    create: (projectId: string, agentId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/skills', 'post'>): Promise<Skill> =>
      this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents/{agentId}/skills', { params: { path: { projectId, agentId } }, body })),
    update: (projectId: string, agentId: string, skillId: string, body: BodyOf<'/api/v1/projects/{projectId}/agents/{agentId}/skills/{skillId}', 'patch'>): Promise<Skill> =>
      this.t.unwrap(this.t.api.PATCH('/api/v1/projects/{projectId}/agents/{agentId}/skills/{skillId}', { params: { path: { projectId, agentId, skillId } }, body })),
    delete: (projectId: string, agentId: string, skillId: string): Promise<unknown> =>
      this.t.unwrap(this.t.api.DELETE('/api/v1/projects/{projectId}/agents/{agentId}/skills/{skillId}', { params: { path: { projectId, agentId, skillId } } })),
  };
  readonly webhooks = {
    /** Creates or rotates the signing secret; shown only here. */
    rotateSecret: (projectId: string, agentId: string): Promise<{ secret: string }> =>
      this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents/{agentId}/webhook-secret', { params: { path: { projectId, agentId } }, body: {} })),
    deliveries: (projectId: string, agentId: string, query: QueryOf<'/api/v1/projects/{projectId}/agents/{agentId}/webhook-deliveries', 'get'> = {}): Promise<unknown> =>
      this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents/{agentId}/webhook-deliveries', { params: { path: { projectId, agentId }, query } })),
  };
  types(projectId?: string): Promise<AgentType[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/agent-types', { params: { query: projectId ? { project_id: projectId } : {} } }));
  }
  /** A project's own agent type. */
  createType(projectId: string, body: BodyOf<'/api/v1/projects/{projectId}/agent-types', 'post'>): Promise<AgentType> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agent-types', { params: { path: { projectId } }, body }));
  }
  // `connect` (the agent WebSocket) is added by the Node entry: node-client.ts.
}

/** Sessions through all three route families: seed 002 (sessions), 004 (conversations), 001. */
export class Sessions extends Resource {
  /** A session with its own new sandbox (seed 002). Idempotent. */
  create(body: BodyOf<'/api/v1/sessions', 'post'>, opts?: IdempotentOptions): Promise<Session> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sessions', { body, headers: keyHeader(opts) }));
  }
  /** Seed 002's view with the newest messages. */
  get(sessionId: string, query: QueryOf<'/api/v1/sessions/{sid}', 'get'> = {}): Promise<SessionWithMessages> {
    return this.t.unwrap(this.t.api.GET('/api/v1/sessions/{sid}', { params: { path: { sid: sessionId }, query } }));
  }
  /**
   * Sends a user message and resolves with the agent's reply message. The server waits for the
   * reply up to its limit; past that (202) this follows the session's stream until it comes to
   * rest, then reads the reply. Idempotent: retried after a network error with the same key.
   */
  async send(sessionId: string, text: string, opts: IdempotentOptions & { timeoutSeconds?: number } = {}): Promise<Message> {
    const { data, error, response } = await this.t.api.POST('/api/v1/sessions/{sid}/messages', {
      params: { path: { sid: sessionId }, query: opts.timeoutSeconds ? { timeout: opts.timeoutSeconds } : {} },
      body: { role: 'user', content: [{ type: 'text', text }] },
      headers: keyHeader(opts),
    });
    if (!response.ok) throw TroupeError.fromBody(response.status, error ?? '', response.headers.get('retry-after'), `POST /api/v1/sessions/${sessionId}/messages`);
    if (response.status !== 202) return data as Message;
    const accepted = data as MessageAccepted;
    for await (const e of streamSession(this.t, sessionId, { lastEventId: accepted.event_index })) {
      if (e.type === 'status' && ['idle', 'paused', ...TERMINAL_STATUSES].includes(e.data.payload?.status)) break;
    }
    const s = await this.get(sessionId, { limit: 20 });
    const reply = s.messages.filter((m) => m.role === 'assistant').pop();
    if (!reply) throw new TroupeError(502, `Session ${sessionId} came to rest (${s.status}) without a reply${s.error ? `: ${s.error}` : ''}`);
    return reply;
  }
  /** Sends without waiting: 202 with where to follow the reply. */
  sendNoWait(sessionId: string, text: string, opts: IdempotentOptions = {}): Promise<MessageAccepted> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sessions/{sid}/messages', {
      params: { path: { sid: sessionId }, query: { wait: false } },
      body: { role: 'user', content: [{ type: 'text', text }] },
      headers: keyHeader(opts),
    }));
  }
  /** The live SSE stream as an async iterator; resumes by itself, ends with the session. */
  stream(sessionId: string, opts: StreamOptions = {}) {
    return streamSession(this.t, sessionId, opts);
  }
  interrupt(sessionId: string): Promise<Session> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sessions/{sid}/interrupt', { params: { path: { sid: sessionId } }, body: {} }));
  }

  // Seed 004: conversations (project-scoped)
  conversation(projectId: string, conversationId: string, query: QueryOf<'/api/v1/projects/{projectId}/conversations/{conversationId}', 'get'> = {}): Promise<Conversation> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/conversations/{conversationId}', { params: { path: { projectId, conversationId }, query } }));
  }
  events(projectId: string, conversationId: string, query: QueryOf<'/api/v1/projects/{projectId}/conversations/{conversationId}/events', 'get'> = {}): Promise<{ events: SessionEvent[]; total: number; has_more: boolean }> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/conversations/{conversationId}/events', { params: { path: { projectId, conversationId }, query } }));
  }
  pause(projectId: string, conversationId: string): Promise<{ status: 'paused' }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/conversations/{conversationId}/pause', { params: { path: { projectId, conversationId } }, body: {} }));
  }
  resume(projectId: string, conversationId: string): Promise<{ status: 'running' }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/conversations/{conversationId}/resume', { params: { path: { projectId, conversationId } }, body: {} }));
  }
  stop(projectId: string, conversationId: string): Promise<{ status: 'stopped' }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/conversations/{conversationId}/stop', { params: { path: { projectId, conversationId } }, body: {} }));
  }
  /** Seed 004's message: appended now, answered at once (not the reply). Idempotent. */
  message(projectId: string, conversationId: string, message: string, opts?: IdempotentOptions): Promise<{ status: string; message_id: string; event_index: number }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/conversations/{conversationId}/message', { params: { path: { projectId, conversationId } }, body: { message }, headers: keyHeader(opts) }));
  }

  // Seed 001: /api/sessions
  readonly v001 = {
    list: (query: QueryOf<'/api/sessions', 'get'> = {}): Promise<{ sessions: Session001[] }> =>
      this.t.unwrap(this.t.api.GET('/api/sessions', { params: { query } })),
    create: (body: BodyOf<'/api/sessions', 'post'>, opts?: IdempotentOptions): Promise<Session001> =>
      this.t.unwrap(this.t.api.POST('/api/sessions', { body, headers: keyHeader(opts) })),
    get: (id: string): Promise<Session001> => this.t.unwrap(this.t.api.GET('/api/sessions/{id}', { params: { path: { id } } })),
    update: (id: string, body: BodyOf<'/api/sessions/{id}', 'patch'>): Promise<Session001> =>
      this.t.unwrap(this.t.api.PATCH('/api/sessions/{id}', { params: { path: { id } }, body })),
    delete: (id: string): Promise<unknown> => this.t.unwrap(this.t.api.DELETE('/api/sessions/{id}', { params: { path: { id } } })),
    message: (id: string, content: string, opts?: IdempotentOptions): Promise<{ message_id: string; status: 'sent'; timestamp: string }> =>
      this.t.unwrap(this.t.api.POST('/api/sessions/{id}/message', { params: { path: { id } }, body: { content }, headers: keyHeader(opts) })),
  };
}

export class Sandboxes extends Resource {
  create(body: BodyOf<'/api/v1/sandboxes', 'post'>): Promise<Sandbox> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sandboxes', { body }));
  }
  list(query: QueryOf<'/api/v1/sandboxes', 'get'> = {}): Promise<Sandbox[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/sandboxes', { params: { query } }));
  }
  get(id: string): Promise<Sandbox> {
    return this.t.unwrap(this.t.api.GET('/api/v1/sandboxes/{id}', { params: { path: { id } } }));
  }
  delete(id: string): Promise<unknown> {
    return this.t.unwrap(this.t.api.DELETE('/api/v1/sandboxes/{id}', { params: { path: { id } } }));
  }
  pause(id: string): Promise<Sandbox> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sandboxes/{id}/pause', { params: { path: { id } }, body: {} }));
  }
  resume(id: string): Promise<Sandbox> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sandboxes/{id}/resume', { params: { path: { id } }, body: {} }));
  }
  /** Another session in this sandbox. Idempotent. */
  createSession(id: string, body: BodyOf<'/api/v1/sandboxes/{id}/sessions', 'post'> = {}, opts?: IdempotentOptions): Promise<Session> {
    return this.t.unwrap(this.t.api.POST('/api/v1/sandboxes/{id}/sessions', { params: { path: { id } }, body, headers: keyHeader(opts) }));
  }
  sessions(id: string): Promise<Session[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/sandboxes/{id}/sessions', { params: { path: { id } } }));
  }
}

export class Chats extends Resource {
  list(projectId: string, agentId: string, query: QueryOf<'/api/v1/projects/{projectId}/agents/{agentId}/chat-sessions', 'get'> = {}): Promise<{ chat_sessions: ChatSession[]; total: number }> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/agents/{agentId}/chat-sessions', { params: { path: { projectId, agentId }, query } }));
  }
  /** Starts a chat with its first message. Idempotent. */
  create(projectId: string, agentId: string, message: string, opts?: IdempotentOptions): Promise<ChatSession & { conversation: Conversation }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/agents/{agentId}/chat-sessions', { params: { path: { projectId, agentId } }, body: { message }, headers: keyHeader(opts) }));
  }
  /** A follow-up. Idempotent. */
  send(projectId: string, chatId: string, message: string, opts?: IdempotentOptions): Promise<ChatMessage & { new_conversation: boolean; conversation: Conversation }> {
    return this.t.unwrap(this.t.api.POST('/api/v1/projects/{projectId}/chat-sessions/{sessionId}/messages', { params: { path: { projectId, sessionId: chatId } }, body: { message }, headers: keyHeader(opts) }));
  }
  messages(projectId: string, chatId: string, query: QueryOf<'/api/v1/projects/{projectId}/chat-sessions/{sessionId}/messages', 'get'> = {}): Promise<{ messages: ChatMessage[]; total: number }> {
    return this.t.unwrap(this.t.api.GET('/api/v1/projects/{projectId}/chat-sessions/{sessionId}/messages', { params: { path: { projectId, sessionId: chatId }, query } }));
  }
}

export class Pairs extends Resource {
  /** Idempotent. */
  create(body: BodyOf<'/api/v1/pair-sessions', 'post'>, opts?: IdempotentOptions): Promise<PairSession> {
    return this.t.unwrap(this.t.api.POST('/api/v1/pair-sessions', { body, headers: keyHeader(opts) }));
  }
  list(query: QueryOf<'/api/v1/pair-sessions', 'get'> = {}): Promise<{ pairSessions: PairSession[]; total: number }> {
    return this.t.unwrap(this.t.api.GET('/api/v1/pair-sessions', { params: { query } }));
  }
  get(id: string): Promise<PairSession> {
    return this.t.unwrap(this.t.api.GET('/api/v1/pair-sessions/{id}', { params: { path: { id } } }));
  }
  turn(id: string, body: BodyOf<'/api/v1/pair-sessions/{id}/turns', 'post'>): Promise<PairTurn> {
    return this.t.unwrap(this.t.api.POST('/api/v1/pair-sessions/{id}/turns', { params: { path: { id } }, body }));
  }
  end(id: string, body: BodyOf<'/api/v1/pair-sessions/{id}/end', 'post'>): Promise<PairSession> {
    return this.t.unwrap(this.t.api.POST('/api/v1/pair-sessions/{id}/end', { params: { path: { id } }, body }));
  }
}

/** Seed 003. With an agent API key these act as its agent; with a user token pass `asAgentId`. */
export class Hub extends Resource {
  createPairingCode(body: BodyOf<'/api/v1/pairing-codes', 'post'> = {}): Promise<PairingCode> {
    return this.t.unwrap(this.t.api.POST('/api/v1/pairing-codes', { body }));
  }
  connect(body: BodyOf<'/api/v1/connections', 'post'>): Promise<Connection> {
    return this.t.unwrap(this.t.api.POST('/api/v1/connections', { body }));
  }
  connections(query: QueryOf<'/api/v1/connections', 'get'> = {}): Promise<Connection[]> {
    return this.t.unwrap(this.t.api.GET('/api/v1/connections', { params: { query } }));
  }
  disconnect(id: string, query: QueryOf<'/api/v1/connections/{id}', 'delete'> = {}): Promise<unknown> {
    return this.t.unwrap(this.t.api.DELETE('/api/v1/connections/{id}', { params: { path: { id }, query } }));
  }
  readonly tasks = {
    /** Idempotent. */
    create: (body: BodyOf<'/api/v1/tasks', 'post'>, opts?: IdempotentOptions): Promise<Task> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks', { body, headers: keyHeader(opts) })),
    list: (query: QueryOf<'/api/v1/tasks', 'get'> = {}): Promise<Task[]> => this.t.unwrap(this.t.api.GET('/api/v1/tasks', { params: { query } })),
    get: (taskId: string, query: QueryOf<'/api/v1/tasks/{taskId}', 'get'> = {}): Promise<Task> =>
      this.t.unwrap(this.t.api.GET('/api/v1/tasks/{taskId}', { params: { path: { taskId }, query } })),
    setStatus: (taskId: string, body: BodyOf<'/api/v1/tasks/{taskId}/status', 'post'>): Promise<Task> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks/{taskId}/status', { params: { path: { taskId } }, body })),
    approve: (taskId: string, body: BodyOf<'/api/v1/tasks/{taskId}/approve', 'post'> = {}): Promise<Task> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks/{taskId}/approve', { params: { path: { taskId } }, body })),
    reject: (taskId: string, body: BodyOf<'/api/v1/tasks/{taskId}/reject', 'post'> = {}): Promise<Task> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks/{taskId}/reject', { params: { path: { taskId } }, body })),
    cancel: (taskId: string, body: BodyOf<'/api/v1/tasks/{taskId}/cancel', 'post'> = {}): Promise<Task> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks/{taskId}/cancel', { params: { path: { taskId } }, body })),
    messages: (taskId: string, query: QueryOf<'/api/v1/tasks/{taskId}/messages', 'get'> = {}): Promise<TaskMessage[]> =>
      this.t.unwrap(this.t.api.GET('/api/v1/tasks/{taskId}/messages', { params: { path: { taskId }, query } })),
    /** Idempotent. */
    send: (taskId: string, body: BodyOf<'/api/v1/tasks/{taskId}/messages', 'post'>, opts?: IdempotentOptions): Promise<TaskMessage> =>
      this.t.unwrap(this.t.api.POST('/api/v1/tasks/{taskId}/messages', { params: { path: { taskId } }, body, headers: keyHeader(opts) })),
  };
  /** One page of the acting agent's events after `after`. */
  updates(query: QueryOf<'/api/v1/updates', 'get'> = {}): Promise<UpdatesPage> {
    return this.t.unwrap(this.t.api.GET('/api/v1/updates', { params: { query } }));
  }
}

export class TroupeClient {
  readonly transport: Transport;
  readonly projects: Projects;
  readonly agents: Agents;
  readonly sessions: Sessions;
  readonly sandboxes: Sandboxes;
  readonly chats: Chats;
  readonly pairs: Pairs;
  readonly hub: Hub;

  constructor(opts: ClientOptions) {
    this.transport = new Transport(opts);
    this.projects = new Projects(this.transport);
    this.agents = this.createAgents(this.transport);
    this.sessions = new Sessions(this.transport);
    this.sandboxes = new Sandboxes(this.transport);
    this.chats = new Chats(this.transport);
    this.pairs = new Pairs(this.transport);
    this.hub = new Hub(this.transport);
  }

  /** The `agents` resource (the Node entry's has `connect`). */
  protected createAgents(t: Transport): Agents {
    return new Agents(t);
  }

  /** The API's OpenAPI document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.transport.unwrap(this.transport.api.GET('/openapi.json'));
  }
}
