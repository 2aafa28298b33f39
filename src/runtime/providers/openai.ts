/** OpenAI, or any server speaking its Chat Completions API (vLLM, Ollama, LiteLLM...) via baseUrl. */
import OpenAI from 'openai';
import { abortError, checkModelUrl, providerGuard, toProviderError, type ProviderOptions } from './shared.js';
import type { OutboundGuard } from '../../lib/outbound.js';
import {
  ModelProviderError,
  type ChatMessage,
  type ModelCallRequest,
  type ModelCallResult,
  type ModelProvider,
  type ProviderConfig,
  type ToolCall,
  type ToolDefinition,
} from './types.js';

type MessageParam = OpenAI.ChatCompletionMessageParam;
type ContentPart = OpenAI.ChatCompletionContentPart;

const DEFAULT_MODEL = 'gpt-4o-mini';
const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
/** Sent to self-hosted servers that need no key; the SDK refuses to run without one. */
const NO_KEY = 'no-key';

export class OpenAIProvider implements ModelProvider {
  readonly name = 'openai' as const;
  private readonly model: string;
  private readonly baseUrl: string;
  private readonly apiKey: string | null;
  private readonly guard: OutboundGuard;
  private readonly client: OpenAI | null;

  constructor(cfg: ProviderConfig, opts: ProviderOptions = {}) {
    this.model = cfg.model || DEFAULT_MODEL;
    // Explicit values so OPENAI_* variables of the worker's environment never stand in for the agent's.
    this.baseUrl = cfg.baseUrl || DEFAULT_BASE_URL;
    this.apiKey = cfg.apiKey || null;
    this.guard = providerGuard(opts);
    const key = this.apiKey ?? (cfg.baseUrl ? NO_KEY : null);
    this.client = key
      ? new OpenAI({
          apiKey: key,
          baseURL: this.baseUrl,
          organization: null,
          project: null,
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
      throw new ModelProviderError("OpenAI needs an API key: set the agent's llm_api_key.", undefined, false);
    }
    await checkModelUrl(this.guard, 'openai', this.baseUrl);
    if (req.signal?.aborted) throw abortError();
    let streamStarted = false;
    // A throwing onTextDelta is the caller's bug, not a broken stream: rethrow it untouched.
    let deltaError: unknown;
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.model,
          stream: true,
          messages: toOpenAIMessages(req.system, req.messages),
          ...(req.tools.length ? { tools: req.tools.map(toOpenAITool) } : {}),
        },
        { signal: req.signal },
      );
      streamStarted = true;

      let text = '';
      let finishReason: string | null = null;
      const calls: Array<{ id: string; name: string; args: string }> = [];
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        const delta = choice.delta;
        if (delta?.content) {
          text += delta.content;
          try {
            req.onTextDelta?.(delta.content);
          } catch (err) {
            deltaError = err;
            throw err;
          }
        }
        for (const tc of delta?.tool_calls ?? []) {
          // The first fragment of a call carries its id and name; later ones append arguments.
          const call = (calls[tc.index] ??= { id: '', name: '', args: '' });
          if (tc.id) call.id = tc.id;
          if (tc.function?.name) call.name += tc.function.name;
          if (tc.function?.arguments) call.args += tc.function.arguments;
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      // The SDK ends the iteration quietly when aborted, and when the body ends early.
      if (req.signal?.aborted) throw abortError();
      if (!finishReason) {
        throw new ModelProviderError('OpenAI stream ended unexpectedly: no finish_reason received', undefined, true);
      }
      const toolCalls: ToolCall[] = calls
        .filter((c) => c !== undefined)
        .map((c, i) => ({ id: c.id || `call_${i}`, name: c.name, input: parseArguments(c.args) }));
      return { text, toolCalls, stopReason: finishReason };
    } catch (err) {
      if (deltaError !== undefined) throw deltaError;
      throw toProviderError(err, {
        provider: 'openai',
        model: this.model,
        baseUrl: this.baseUrl,
        apiKey: this.apiKey,
        signal: req.signal,
        streamStarted,
      });
    }
  }
}

/** Models sometimes emit invalid JSON; the tool then sees `{}` and the raw text, not a crash. */
function parseArguments(raw: string): Record<string, unknown> {
  if (!raw.trim()) return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { _raw: raw };
}

export function toOpenAIMessages(system: string, history: ChatMessage[]): MessageParam[] {
  const out: MessageParam[] = [];
  if (system) out.push({ role: 'system', content: system });
  for (const m of history) {
    if (m.role === 'assistant') {
      const text = m.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
      const toolCalls = m.content.flatMap((b) =>
        b.type === 'tool_use'
          ? [{ id: b.id, type: 'function' as const, function: { name: b.name, arguments: JSON.stringify(b.input) } }]
          : [],
      );
      out.push({
        role: 'assistant',
        content: text || (toolCalls.length ? null : ''),
        ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      });
      continue;
    }
    // Tool results must directly follow the assistant message that made the calls, so they go
    // before whatever else the user turn carries.
    const parts: ContentPart[] = [];
    for (const b of m.content) {
      if (b.type === 'tool_result') {
        out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: b.is_error ? `Error: ${b.content}` : b.content });
      } else if (b.type === 'text') {
        if (b.text) parts.push({ type: 'text', text: b.text });
      } else if (b.type === 'image') {
        parts.push({ type: 'image_url', image_url: { url: `data:${b.media_type};base64,${b.data}` } });
      }
    }
    if (!parts.length) continue;
    const textOnly = parts.every((p) => p.type === 'text');
    out.push({
      role: 'user',
      content: textOnly ? parts.map((p) => (p as OpenAI.ChatCompletionContentPartText).text).join('\n\n') : parts,
    });
  }
  return out;
}

function toOpenAITool(t: ToolDefinition): OpenAI.ChatCompletionTool {
  return { type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } };
}
