/**
 * Shell and files: `bash`, `read_file`, `write_file`, `edit_file`, `list_files`, run in the
 * session's sandbox through the driver. Paths are relative to /workspace unless absolute. Results
 * are capped so one noisy command cannot flood the model's context or the event log.
 */
import path from 'node:path/posix';
import { StringDecoder } from 'node:string_decoder';
import { shellQuote } from '../../lib/shell.js';
import type { ToolDefinition, ToolFamily, ToolOutcome, ToolRunContext } from './types.js';

export const SHELL_AND_FILE_TOOLS: ToolDefinition[] = [
  {
    name: 'bash',
    description: 'Run a shell command in the sandbox (working directory /workspace). Returns stdout, stderr and the exit code.',
    input_schema: {
      type: 'object',
      properties: {
        command: { type: 'string', description: 'The command, run with sh -c' },
        timeout_seconds: { type: 'integer', minimum: 1, description: 'Kill the command after this long' },
      },
      required: ['command'],
    },
  },
  {
    name: 'read_file',
    description: 'Read a text file from the sandbox (the first 1 MiB of a larger one).',
    input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
  },
  {
    name: 'write_file',
    description: 'Create or overwrite a file in the sandbox (parent directories are created).',
    input_schema: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path', 'content'] },
  },
  {
    name: 'edit_file',
    description: 'Replace one exact occurrence of old_string with new_string in a file. Fails if old_string is missing or not unique.',
    input_schema: {
      type: 'object',
      properties: { path: { type: 'string' }, old_string: { type: 'string' }, new_string: { type: 'string' } },
      required: ['path', 'old_string', 'new_string'],
    },
  },
  {
    name: 'list_files',
    description: 'List files under a directory (two levels deep).',
    input_schema: { type: 'object', properties: { path: { type: 'string', description: 'Defaults to /workspace' } } },
  },
];

const MAX_RESULT_CHARS = 50_000;
/** read_file reads no more of a file than this, however large (or sparse) the file is. */
export const READ_MAX_BYTES = 1024 * 1024;
/** edit_file loads the whole file to edit it, so it refuses larger ones (bash and sed can do those). */
export const EDIT_MAX_BYTES = 8 * 1024 * 1024;

const resolvePath = (p: unknown) => path.resolve('/workspace', String(p ?? '.'));
const clip = (s: string) => (s.length > MAX_RESULT_CHARS ? `${s.slice(0, MAX_RESULT_CHARS)}\n...[truncated ${s.length - MAX_RESULT_CHARS} characters]` : s);

type Input = Record<string, unknown>;

const RUNNERS: Record<string, (input: Input, ctx: ToolRunContext, runId: string) => Promise<ToolOutcome>> = {
  async bash(input, ctx, runId) {
    if (typeof input.command !== 'string' || !input.command) return { content: 'bash needs a "command" string', is_error: true };
    const asked = typeof input.timeout_seconds === 'number' ? input.timeout_seconds * 1000 : ctx.maxTimeoutMs;
    const r = await ctx.driver.exec(ctx.containerId, {
      command: input.command, timeoutMs: Math.min(asked, ctx.maxTimeoutMs), signal: ctx.killSignal, onOutput: ctx.onOutput, runId, onStart: ctx.onStart,
    });
    const parts = [r.stdout, r.stderr ? `[stderr]\n${r.stderr}` : ''].filter(Boolean).join('\n');
    const note = r.timedOut ? `\n[killed: timed out]` : r.aborted ? `\n[killed: interrupted]` : '';
    return { content: clip(`${parts}${note}\n[exit code ${r.exitCode}]`.trimStart()), is_error: r.exitCode !== 0, exit_code: r.exitCode };
  },

  async read_file(input, ctx) {
    const p = resolvePath(input.path);
    const head = await ctx.driver.readFileHead(ctx.containerId, p, READ_MAX_BYTES).catch((e: Error) => e);
    if (head instanceof Error) return { content: `Cannot read ${p}: ${head.message}`, is_error: true };
    if (head.size <= head.data.length) return { content: clip(head.data.toString('utf8')), is_error: false };
    // Cut at a byte count: leave out a character the cut split rather than show a broken one.
    const text = new StringDecoder('utf8').write(head.data);
    return {
      content: `${clip(text)}\n...[${p} is ${head.size} bytes; this is its first ${head.data.length}: use bash (head, tail, sed -n) for the rest]`,
      is_error: false,
    };
  },

  async write_file(input, ctx) {
    if (typeof input.content !== 'string') return { content: 'write_file needs a "content" string', is_error: true };
    const p = resolvePath(input.path);
    const err = await ctx.driver.writeFile(ctx.containerId, p, input.content).then(() => null, (e: Error) => e);
    return err ? { content: `Cannot write ${p}: ${err.message}`, is_error: true } : { content: `Wrote ${Buffer.byteLength(input.content)} bytes to ${p}`, is_error: false };
  },

  async edit_file(input, ctx) {
    const p = resolvePath(input.path);
    const oldS = String(input.old_string ?? '');
    const head = await ctx.driver.readFileHead(ctx.containerId, p, EDIT_MAX_BYTES).catch((e: Error) => e);
    if (head instanceof Error) return { content: `Cannot read ${p}: ${head.message}`, is_error: true };
    if (head.size > head.data.length) {
      return { content: `${p} is ${head.size} bytes, more than edit_file handles (${EDIT_MAX_BYTES}); edit it with bash (e.g. sed)`, is_error: true };
    }
    const text = head.data.toString('utf8');
    const count = oldS ? text.split(oldS).length - 1 : 0;
    if (count !== 1) return { content: `old_string must occur exactly once in ${p}; found ${count} occurrences`, is_error: true };
    await ctx.driver.writeFile(ctx.containerId, p, text.replace(oldS, () => String(input.new_string ?? '')));
    return { content: `Edited ${p}`, is_error: false };
  },

  async list_files(input, ctx) {
    const p = resolvePath(input.path ?? '/workspace');
    const r = await ctx.driver.exec(ctx.containerId, { command: `find ${shellQuote(p)} -maxdepth 2 | sort | head -500`, timeoutMs: 15_000, signal: ctx.killSignal });
    return { content: clip(r.stdout || r.stderr), is_error: r.exitCode !== 0, exit_code: r.exitCode };
  },
};

/** `offer`: whether the model is offered a tool (the agent type's tool list); they run either way. */
export function shellAndFileTools(offer: (name: string) => boolean = () => true): ToolFamily {
  return {
    definitions: SHELL_AND_FILE_TOOLS.filter((t) => offer(t.name)),
    has: (name) => Object.hasOwn(RUNNERS, name),
    run: (call, ctx) => RUNNERS[call.name](call.input, ctx, call.id),
  };
}
