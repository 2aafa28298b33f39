/** The provider factory: which class serves which `llm_provider`. */
import { AnthropicProvider } from './anthropic.js';
import { OpenAIProvider } from './openai.js';
import { ScriptedProvider } from './scripted.js';
import type { ModelProvider, ProviderConfig } from './types.js';
import type { ProviderOptions } from './shared.js';

export { AnthropicProvider, OpenAIProvider, ScriptedProvider };
export * from './shared.js';

export function createProvider(cfg: ProviderConfig, opts: ProviderOptions = {}): ModelProvider {
  switch (cfg.provider) {
    case 'anthropic':
      return new AnthropicProvider(cfg, opts);
    case 'openai':
      return new OpenAIProvider(cfg, opts);
    case 'scripted':
      return new ScriptedProvider(cfg.script ?? null);
    default:
      throw new Error(`unknown model provider ${JSON.stringify((cfg as { provider: unknown }).provider)}`);
  }
}

