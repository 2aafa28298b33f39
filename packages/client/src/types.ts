/**
 * What the API answers. Request types come from the generated OpenAPI types (generated/openapi.ts);
 * most routes do not declare a response schema yet, so the answers are written down here, from
 * the views in src/services (README "Route map by seed"). Each carries an index signature: a field
 * the server adds later is still there at run time.
 */
import type { paths } from './generated/openapi.js';

type Json = 'application/json';
/** The JSON body of an operation, as the API's schema (and ajv) has it. */
export type BodyOf<P extends keyof paths, M extends keyof paths[P]> =
  paths[P][M] extends { requestBody?: { content: { [K in Json]: infer B } } } ? B : never;
/** The query parameters of an operation. */
export type QueryOf<P extends keyof paths, M extends keyof paths[P]> =
  paths[P][M] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type SessionStatus = 'queued' | 'running' | 'idle' | 'paused' | 'completed' | 'stopped' | 'failed';
export const TERMINAL_STATUSES: readonly SessionStatus[] = ['completed', 'stopped', 'failed'];

interface Open { [field: string]: unknown }

export interface Project extends Open { id: string; name: string; description: string | null; role: 'owner' | 'admin' | 'member' | 'viewer'; created_at: string }
export interface Member extends Open { id: string; project_id: string; member_type: 'user' | 'agent'; user_id: string | null; agent_id: string | null; role: Project['role']; created_at: string }

type AgentBody = BodyOf<'/api/v1/projects/{projectId}/agents', 'post'>;
/** An agent's sandbox settings (image, memory, cpus, pids, network), as the agent schema has them. */
export type SandboxSettings = NonNullable<AgentBody['sandbox']>;
/** The turns a `scripted` agent plays instead of calling a model. */
export type AgentScript = NonNullable<AgentBody['script']>;

export interface Agent extends Open {
  id: string; project_id: string; name: string; handle: string; kind: 'hosted' | 'external';
  agent_type: { id: string; name: string; slug: string } | null;
  llm_provider: 'anthropic' | 'openai' | 'scripted'; llm_model: string | null; llm_base_url: string | null; has_llm_api_key: boolean;
  system_prompt: string | null; max_iterations: number; timeout_minutes: number; approval: 'auto' | 'require';
  webhook_url: string | null; sandbox: SandboxSettings | null; script: AgentScript | null; member_id: string; created_at: string; updated_at: string;
  mcp_servers?: McpServer[]; skills?: Skill[];
}
/** A kind of agent: the built-in ones (project_id null) and a project's own. */
export interface AgentType extends Open {
  id: string; project_id: string | null; name: string; slug: string; description: string | null; built_in: boolean;
  default_system_prompt: string | null; default_image: string | null; tools: string[]; created_at: string;
}
export interface McpServer extends Open { id: string; agent_id: string; server_name: string; transport: 'stdio' | 'http'; command: string | null; args: string[]; env_keys: string[]; url: string | null; is_enabled: boolean }
export interface Skill extends Open { id: string; agent_id: string; skill_name: string; skill_source: 'inline' | 'github_url'; source_url: string | null; triggers: string[]; is_enabled: boolean }
export interface ApiKey extends Open { id: string; name: string | null; key_prefix: string; created_at: string; last_used_at?: string | null; revoked_at?: string | null }
/** Only the create answer has the key itself. */
export interface NewApiKey extends ApiKey { key: string }

/** A content block of a seed 002 message. */
export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error?: boolean }
  | { type: 'image'; media_type: string; data: string };
export interface Message extends Open { id: string | null; session_id: string; role: 'user' | 'assistant'; content: ContentBlock[]; timestamp: string }

/** Seed 002's view of a session. */
export interface Session extends Open {
  id: string; sandbox_id: string; agent_id: string; project_id: string;
  state: 'active' | 'paused' | 'completed' | 'stopped' | 'failed'; status: SessionStatus; error: string | null;
  metadata: Record<string, unknown>; container_id: string | null; created_at: string; updated_at: string;
}
export interface SessionWithMessages extends Session { messages: Message[]; messages_has_more: boolean; messages_before: number | null }
/** Seed 004's view: a conversation. */
export interface Conversation extends Open {
  id: string; project_id: string; agent_id: string; trigger_type: string; task_id: string | null; status: SessionStatus;
  error: string | null; iteration_count: number; sandbox_id: string; container_id: string | null;
  started_at: string | null; finished_at: string | null; created_at: string; updated_at: string; events?: SessionEvent[];
}
/** Seed 001's view. */
export interface Session001 extends Open {
  id: string; agent_id: string; task_id: string | null; project_id: string; status: 'created' | 'active' | 'paused' | 'completed' | 'stopped' | 'failed';
  error: string | null; prompt: string | null; created_at: string; last_active: string | null; message_count: number; data: Record<string, unknown>;
}
/** A durable event of a session's log. */
export interface SessionEvent extends Open {
  id: string; session_id: string; event_index: number; event_type: 'message' | 'tool_use' | 'tool_result' | 'status' | 'error';
  event_source: string; payload: Record<string, any>; created_at: string;
}
/** POST /api/v1/sessions/:sid/messages answered before the reply (202, or ?wait=false). */
export interface MessageAccepted extends Open { message_id: string; session_id: string; status: SessionStatus; event_index: number; stream_url: string; events_url: string }

export interface Sandbox extends Open {
  id: string; project_id: string; agent_id: string; image: string; state: 'active' | 'paused' | 'stopped';
  env_keys: string[]; limits: Record<string, unknown>; metadata: Record<string, unknown>; timeout: number | null; container_id: string | null;
  created_at: string; updated_at: string;
}

export interface ChatSession extends Open {
  id: string; project_id: string; agent_id: string; member_id: string; title: string; conversation_id: string | null;
  conversation_status: SessionStatus | null; message_count: number; last_message_at: string | null; created_at: string; updated_at: string;
  conversation?: Conversation;
}
export interface ChatMessage extends Open { id: string; chat_session_id: string; role: 'user' | 'agent'; content: string; conversation_id: string | null; created_at: string }

export interface PairTurn extends Open { id: string; agentId: string; role: 'generate' | 'review' | 'interrupt'; content: string; sessionId: string | null; createdAt: string }
export interface PairSession extends Open {
  id: string; projectId: string; workspaceId: string; generatorId: string; reviewerId: string; task: string;
  status: 'active' | 'completed' | 'abandoned' | 'failed'; turns: PairTurn[]; qualityScore: number | null; drive: boolean; maxTurns: number;
  currentSessionId: string | null; createdAt: string; endedAt: string | null; endReason: string | null;
}

export type TaskStatus = 'submitted' | 'working' | 'input-required' | 'completed' | 'failed' | 'cancelled';
export interface PairingCode extends Open { code: string; expiresAt: string }
export interface Connection extends Open { id: string; agentId: string; withAgentId: string; withAgentName?: string | null; approval: 'auto' | 'require'; createdAt: string }
export interface Task extends Open { id: string; fromAgentId: string; toAgentId: string; title: string; status: TaskStatus; approval: string | null; sessionId: string | null; createdAt: string; updatedAt: string }
export interface TaskMessage extends Open { id: string; taskId: string; fromAgentId: string; content: string; createdAt: string }
/** A hub event addressed to an agent (seed 003), exactly in the seed's shapes. */
export type HubEventBody =
  | { type: 'task.created'; taskId: string; fromAgentId: string }
  | { type: 'task.approval_required'; taskId: string; fromAgentId: string }
  | { type: 'task.updated'; taskId: string; status: TaskStatus }
  | { type: 'message.created'; taskId: string; messageId: string; fromAgentId: string }
  | { type: 'agent.connected'; connectionId: string; withAgentId: string; withAgentName: string; withPublicKey?: string }
  | { type: 'agent.disconnected'; connectionId: string; byAgentId: string };
/** ... with its position in the agent's updates log (the cursor to resume after). */
export type HubEvent = HubEventBody & { cursor: string; createdAt?: string };
export interface UpdatesPage { events: HubEvent[]; next_cursor: string | null; has_more: boolean }
