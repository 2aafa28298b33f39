/**
 * What every provider shares, and the one place SDK failures become messages fit for a session's
 * `error` field: both official SDKs share the Stainless error hierarchy, so one mapping serves
 * both. Also the outbound guard's quick check of a model URL. Providers import this; the factory
 * (index.ts) imports the providers, so there is no cycle.
 */
import * as AnthropicSDK from '@anthropic-ai/sdk';
import * as OpenAISDK from 'openai';
import { ModelProviderError } from './types.js';
import { blockedCause, outbound, type OutboundBlockedError, type OutboundGuard } from '../../lib/outbound.js';

/** Knobs for the HTTP providers; tests lower them, production keeps the defaults. */
export interface ProviderOptions {
  /** SDK retries on 408/409/429/5xx and connection errors. Default 2. */
  maxRetries?: number;
  /** Per-request timeout in ms. Default 120 000. */
  timeoutMs?: number;
  /** The outbound guard every request goes through. Default: the deployment's (lib/outbound.ts). */
  guard?: OutboundGuard;
}

/**
 * Refuses a base URL the outbound guard blocks before the SDK tries (and retries) it, with a
 * message fit for the session's `error`. The guard still checks every connection the SDK makes
 * (redirects, DNS answers that change); this is only the quick, clear answer.
 */
export async function checkModelUrl(guard: OutboundGuard, provider: 'anthropic' | 'openai', baseUrl: string): Promise<void> {
  try {
    await guard.check(baseUrl, 'model');
  } catch (err) {
    const blocked = blockedCause(err);
    if (blocked) throw blockedError(provider, baseUrl, blocked);
    if (err instanceof TypeError) throw new ModelProviderError(`${LABEL[provider]}: llm_base_url ${baseUrl} is not usable: ${err.message}`, undefined, false);
    // A name that does not resolve: the SDK's own attempt reports it as a connection error.
  }
}

function blockedError(provider: 'anthropic' | 'openai', baseUrl: string, blocked: OutboundBlockedError): ModelProviderError {
  return new ModelProviderError(
    `${LABEL[provider]}: llm_base_url ${baseUrl} is refused by the outbound guard (${blocked.range} address). ` +
      'Model servers on loopback, private, link-local or metadata addresses need an operator to allow them in TROUPE_OUTBOUND_ALLOW ' +
      '(loopback ones are allowed when the server listens on loopback only).',
    undefined,
    false,
  );
}

/** The guard a provider uses. */
export function providerGuard(opts: ProviderOptions): OutboundGuard {
  return opts.guard ?? outbound();
}

/** The error every provider rejects with on cancellation, whatever the SDK threw. */
export function abortError(): Error {
  const err = new Error('The model call was aborted');
  err.name = 'AbortError';
  return err;
}

export interface ErrorContext {
  provider: 'anthropic' | 'openai';
  model: string;
  baseUrl: string;
  apiKey?: string | null;
  signal?: AbortSignal;
  /** True once the HTTP response started streaming: later failures are broken streams. */
  streamStarted: boolean;
}

const LABEL = { anthropic: 'Anthropic', openai: 'OpenAI' } as const;

/** Maps anything a provider call threw to an AbortError or a ModelProviderError. */
export function toProviderError(err: unknown, ctx: ErrorContext): Error {
  if (ctx.signal?.aborted || isAbort(err)) return abortError();
  if (err instanceof ModelProviderError) return redactError(err, ctx.apiKey);

  const label = LABEL[ctx.provider];
  const blocked = blockedCause(err);
  if (blocked) return blockedError(ctx.provider, ctx.baseUrl, blocked);
  const fail = (message: string, status: number | undefined, retryable: boolean) =>
    new ModelProviderError(redact(message, ctx.apiKey), status, retryable);

  if (isTimeout(err)) return fail(`${label} did not answer in time (${ctx.baseUrl})`, undefined, true);
  if (isConnectionError(err)) {
    return fail(`${label}: could not reach ${ctx.baseUrl}: ${causeMessage(err)}`, undefined, true);
  }
  if (isApiError(err) && typeof err.status === 'number') {
    const status = err.status;
    const msg = apiMessage(err);
    if (status === 401 || status === 403) {
      return fail(`${label} rejected the API key (HTTP ${status}): ${msg}. Check the agent's llm_api_key.`, status, false);
    }
    if (status === 404) {
      return fail(
        `${label} did not find model "${ctx.model}" (HTTP 404): ${msg}. Check the agent's llm_model and llm_base_url.`,
        status,
        false,
      );
    }
    if (status === 429) return fail(`${label} rate limited the request (HTTP 429): ${msg}`, status, true);
    if (status >= 500) return fail(`${label} server error (HTTP ${status}): ${msg}`, status, true);
    return fail(`${label} rejected the request (HTTP ${status}): ${msg}`, status, status === 408 || status === 409);
  }
  const msg = isApiError(err) ? apiMessage(err) : errorMessage(err);
  if (ctx.streamStarted) return fail(`${label} stream ended unexpectedly: ${msg}`, undefined, true);
  return fail(`${label} request failed: ${msg}`, undefined, false);
}

/** Removes the key from text: providers echo (parts of) keys back, and messages end up in logs and the UI. */
export function redact(text: string, apiKey?: string | null): string {
  // Providers echo a masked key ("sk-ab***...wxyz"); even a fragment is not ours to show.
  const masked = text.replace(/\b[A-Za-z0-9][A-Za-z0-9_-]{1,}\*{3,}[A-Za-z0-9_-]*/g, '[redacted]');
  if (!apiKey || apiKey.length < 4) return masked;
  return masked.split(apiKey).join('[redacted]');
}

function redactError(err: ModelProviderError, apiKey?: string | null): ModelProviderError {
  const message = redact(err.message, apiKey);
  return message === err.message ? err : new ModelProviderError(message, err.status, err.retryable);
}

type ApiErrorLike = Error & { status?: number; error?: unknown; apiMessage?: string | null };

function isApiError(err: unknown): err is ApiErrorLike {
  return err instanceof AnthropicSDK.APIError || err instanceof OpenAISDK.APIError;
}

function isAbort(err: unknown): boolean {
  return (
    err instanceof AnthropicSDK.APIUserAbortError ||
    err instanceof OpenAISDK.APIUserAbortError ||
    (err instanceof Error && err.name === 'AbortError')
  );
}

function isTimeout(err: unknown): boolean {
  return err instanceof AnthropicSDK.APIConnectionTimeoutError || err instanceof OpenAISDK.APIConnectionTimeoutError;
}

function isConnectionError(err: unknown): boolean {
  return err instanceof AnthropicSDK.APIConnectionError || err instanceof OpenAISDK.APIConnectionError;
}

/** The provider's own words from the JSON error body, without the SDK's status/JSON prefix. */
function apiMessage(err: ApiErrorLike): string {
  const body = err.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const msg = err.apiMessage ?? body?.error?.message ?? body?.message ?? err.message;
  return String(msg).replace(/\.\s*$/, '');
}

function causeMessage(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const inner = (cause as { cause?: unknown } | undefined)?.cause;
  // undici wraps the socket error (ECONNREFUSED, ENOTFOUND) one level further down.
  return errorMessage(inner ?? cause ?? err);
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || ((err as { code?: string }).code ?? err.name);
  return String(err);
}
