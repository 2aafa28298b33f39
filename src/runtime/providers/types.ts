/**
 * Model providers stream one model call: text deltas as they come, then the tool calls.
 * History uses Anthropic-style content blocks; each provider converts to its own wire format.
 */
export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error?: boolean }
  | { type: 'image'; media_type: string; data: string };

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: ContentBlock[];
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the tool's input object. */
  input_schema: Record<string, unknown>;
}

export interface ModelCallRequest {
  system: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  signal?: AbortSignal;
  /** Called for each text delta, in order. */
  onTextDelta?: (delta: string) => void;
  /**
   * How many model calls this session has completed before this one. The scripted provider
   * uses it to pick its next turn, so a call re-run after a crash gives the same answer.
   */
  turnIndex: number;
}

export interface ToolCall {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export interface ModelCallResult {
  text: string;
  toolCalls: ToolCall[];
  /** Provider's stop reason, informational. */
  stopReason?: string;
}

export interface ModelProvider {
  readonly name: 'anthropic' | 'openai' | 'scripted';
  call(req: ModelCallRequest): Promise<ModelCallResult>;
}

/** A provider failure with a message fit for the session's `error` field. */
export class ModelProviderError extends Error {
  constructor(
    message: string,
    /** HTTP status from the provider, when there was one. */
    readonly status?: number,
    /** True when retrying later could succeed (429, 5xx, broken stream). */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'ModelProviderError';
  }
}

export interface ProviderConfig {
  provider: 'anthropic' | 'openai' | 'scripted';
  model?: string | null;
  baseUrl?: string | null;
  apiKey?: string | null;
  /** The agent's `script` for the scripted provider. */
  script?: ScriptedScript | null;
}

export interface ScriptedScript {
  turns: Array<{ text?: string; tool_calls?: Array<{ name: string; input: Record<string, unknown> }> }>;
  token_delay_ms?: number;
}
