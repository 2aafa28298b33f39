/** Claude through the official SDK's streaming Messages API. */
import Anthropic from '@anthropic-ai/sdk';
import { abortError, checkModelUrl, providerGuard, toProviderError, type ProviderOptions } from './shared.js';
import type { OutboundGuard } from '../../lib/outbound.js';
import {
  ModelProviderError,
  type ChatMessage,
  type ContentBlock,
  type ModelCallRequest,
  type ModelCallResult,
  type ModelProvider,
  type ProviderConfig,
  type ToolCall,
  type ToolDefinition,
} from './types.js';

type MessageParam = Anthropic.MessageParam;
type ContentBlockParam = Anthropic.ContentBlockParam;
type Tool = Anthropic.Tool;

const DEFAULT_MODEL = 'claude-sonnet-5-5';
const DEFAULT_BASE_URL = 'https://api.anthropic.com';
const MAX_TOKENS = 4096;

export class AnthropicProvider implements ModelProvider {
  readonly name = 'anthropic' as const;
  private readonly model: string;
  private readonly baseUrl: string;
  private readonly apiKey: string | null;
  private readonly guard: OutboundGuard;
  private readonly client: Anthropic | null;

  constructor(cfg: ProviderConfig, opts: ProviderOptions = {}) {
    this.model = cfg.model || DEFAULT_MODEL;
    // Explicit base URL and key: the agent's settings win over ANTHROPIC_* variables and the
    // SDK's on-disk credential profiles, which belong to whoever runs the worker.
    this.baseUrl = cfg.baseUrl || DEFAULT_BASE_URL;
    this.apiKey = cfg.apiKey || null;
    this.guard = providerGuard(opts);
    this.client = this.apiKey
      ? new Anthropic({
          apiKey: this.apiKey,
          baseURL: this.baseUrl,
          maxRetries: opts.maxRetries ?? 2,
          timeout: opts.timeoutMs ?? 120_000,
          // Every request (redirects too) goes through the outbound guard.
          fetch: this.guard.fetch('model'),
        })
      : null;
  }

  async call(req: ModelCallRequest): Promise<ModelCallResult> {
    if (req.signal?.aborted) throw abortError();
    if (!this.client) {
      throw new ModelProviderError("Anthropic needs an API key: set the agent's llm_api_key.", undefined, false);
    }
    await checkModelUrl(this.guard, 'anthropic', this.baseUrl);
    if (req.signal?.aborted) throw abortError();
    let streamStarted = false;
    // A throwing onTextDelta is the caller's bug, not a broken stream: rethrow it untouched.
    let deltaError: unknown;
    try {
      const stream = this.client.messages.stream(
        {
          model: this.model,
          max_tokens: MAX_TOKENS,
          ...(req.system ? { system: req.system } : {}),
          messages: toAnthropicMessages(req.messages),
          ...(req.tools.length ? { tools: req.tools.map(toAnthropicTool) } : {}),
        },
        { signal: req.signal },
      );
      // Ask for the final message before any event fires: the SDK reports an unobserved
      // failure as an unhandled rejection.
      const final = stream.finalMessage();
      stream.on('connect', () => (streamStarted = true));
      stream.on('text', (delta) => {
        try {
          req.onTextDelta?.(delta);
        } catch (err) {
          deltaError ??= err;
          throw err;
        }
      });
      const message = await final;

      const text = message.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
      const toolCalls: ToolCall[] = message.content.flatMap((b) =>
        b.type === 'tool_use' ? [{ id: b.id, name: b.name, input: asObject(b.input) }] : [],
      );
      return { text, toolCalls, stopReason: message.stop_reason ?? undefined };
    } catch (err) {
      if (deltaError !== undefined) throw deltaError;
      throw toProviderError(err, {
        provider: 'anthropic',
        model: this.model,
        baseUrl: this.baseUrl,
        apiKey: this.apiKey,
        signal: req.signal,
        streamStarted,
      });
    }
  }
}

/**
 * Messages left empty (an assistant turn that said nothing) are dropped: the API rejects empty
 * content, and merges the same-role neighbours this can leave behind.
 */
export function toAnthropicMessages(history: ChatMessage[]): MessageParam[] {
  return history
    .map((m): MessageParam => ({ role: m.role, content: m.content.flatMap(toAnthropicBlock) }))
    .filter((m) => m.content.length > 0);
}

function toAnthropicBlock(b: ContentBlock): ContentBlockParam[] {
  switch (b.type) {
    case 'text':
      // The API rejects empty text blocks with a 400; an empty turn carries nothing anyway.
      return b.text ? [{ type: 'text', text: b.text }] : [];
    case 'tool_use':
      return [{ type: 'tool_use', id: b.id, name: b.name, input: b.input }];
    case 'tool_result':
      return [
        {
          type: 'tool_result',
          tool_use_id: b.tool_use_id,
          content: b.content,
          ...(b.is_error !== undefined ? { is_error: b.is_error } : {}),
        },
      ];
    case 'image':
      return [
        {
          type: 'image',
          source: { type: 'base64', media_type: b.media_type as 'image/png', data: b.data },
        },
      ];
  }
}

function toAnthropicTool(t: ToolDefinition): Tool {
  return { name: t.name, description: t.description, input_schema: t.input_schema as Anthropic.Tool.InputSchema };
}

function asObject(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
