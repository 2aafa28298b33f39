/**
 * A deterministic stand-in for a model, for demos, tests and load tests: call N plays turn N of
 * the agent's script. Keying on `turnIndex` rather than an internal counter means a call re-run
 * after a crash gives the same answer, and one provider instance can serve many sessions.
 *
 * Without a script the model says "Hello from the scripted model." on the first call and
 * nothing after, so a freshly created scripted agent still visibly answers once.
 */
import { abortError } from './shared.js';
import type { ModelCallRequest, ModelCallResult, ModelProvider, ScriptedScript, ToolCall } from './types.js';

const DEFAULT_SCRIPT: ScriptedScript = { turns: [{ text: 'Hello from the scripted model.' }] };
/** With no delay, still yield to the event loop now and then so a long script can't starve it. */
const YIELD_EVERY = 50;

export class ScriptedProvider implements ModelProvider {
  readonly name = 'scripted' as const;
  private readonly script: ScriptedScript;

  constructor(script?: ScriptedScript | null) {
    this.script = script ?? DEFAULT_SCRIPT;
  }

  async call(req: ModelCallRequest): Promise<ModelCallResult> {
    const { signal } = req;
    const turn = this.script.turns[req.turnIndex];
    const delay = Math.max(0, this.script.token_delay_ms ?? 0);
    await pause(0, signal);
    if (!turn) return { text: '', toolCalls: [], stopReason: 'end_turn' };

    const text = turn.text ?? '';
    const deltas = splitWords(text);
    for (let i = 0; i < deltas.length; i++) {
      if (i > 0 && delay > 0) await pause(delay, signal);
      else if (i > 0 && i % YIELD_EVERY === 0) await pause(0, signal);
      if (signal?.aborted) throw abortError();
      req.onTextDelta?.(deltas[i]);
    }

    const toolCalls: ToolCall[] = (turn.tool_calls ?? []).map((tc, i) => ({
      id: `toolu_scripted_${req.turnIndex}_${i}`,
      name: tc.name,
      // A copy, so a caller mutating the input cannot change the script for later runs.
      input: structuredClone(tc.input ?? {}),
    }));
    return { text, toolCalls, stopReason: toolCalls.length ? 'tool_use' : 'end_turn' };
  }
}

/** Splits after each run of whitespace, so the pieces concatenate back to exactly `text`. */
export function splitWords(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((s) => s !== '');
}

/** setTimeout, or setImmediate for 0 ms; rejects with an AbortError as soon as `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = () => {
      if (ms > 0) clearTimeout(handle as NodeJS.Timeout);
      else clearImmediate(handle as NodeJS.Immediate);
      reject(abortError());
    };
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const handle = ms > 0 ? setTimeout(done, ms) : setImmediate(done);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
