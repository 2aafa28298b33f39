/**
 * Built-in tools for hosted agents, executed in the session's sandbox through the driver.
 * Paths are relative to /workspace unless absolute. Output is capped so one noisy command cannot
 * flood the model's context or the event log.
 */
import path from 'node:path/posix';
import type { SandboxDriver } from './sandbox/driver.js';
import type { ToolDefinition } from './providers/types.js';

export const BUILTIN_TOOLS: ToolDefinition[] = [
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
    description: 'Read a text file from the sandbox.',
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
  {
    name: 'finish',
    description: 'Call when the task is complete, with a short summary of what was done. Ends the session.',
    input_schema: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] },
  },
];

const MAX_RESULT_CHARS = 50_000;

export interface ToolContext {
  driver: SandboxDriver;
  containerId: string;
  signal: AbortSignal;
  /** Upper bound for a bash command, in ms (tool timeout capped by what is left of the session). */
  maxTimeoutMs: number;
  onOutput: (stream: 'stdout' | 'stderr', chunk: string) => void;
  runId: string;
  onStart?: () => void;
}

export interface ToolOutcome {
  content: string;
  is_error: boolean;
  exit_code?: number;
}

const resolvePath = (p: unknown) => path.resolve('/workspace', String(p ?? '.'));
const clip = (s: string) => (s.length > MAX_RESULT_CHARS ? `${s.slice(0, MAX_RESULT_CHARS)}\n...[truncated ${s.length - MAX_RESULT_CHARS} characters]` : s);
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function runTool(name: string, input: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutcome> {
  switch (name) {
    case 'bash': {
      if (typeof input.command !== 'string' || !input.command) return { content: 'bash needs a "command" string', is_error: true };
      const asked = typeof input.timeout_seconds === 'number' ? input.timeout_seconds * 1000 : ctx.maxTimeoutMs;
      const r = await ctx.driver.exec(ctx.containerId, {
        command: input.command, timeoutMs: Math.min(asked, ctx.maxTimeoutMs), signal: ctx.signal, onOutput: ctx.onOutput, runId: ctx.runId, onStart: ctx.onStart,
      });
      const parts = [r.stdout, r.stderr ? `[stderr]\n${r.stderr}` : ''].filter(Boolean).join('\n');
      const note = r.timedOut ? `\n[killed: timed out]` : r.aborted ? `\n[killed: interrupted]` : '';
      return { content: clip(`${parts}${note}\n[exit code ${r.exitCode}]`.trimStart()), is_error: r.exitCode !== 0, exit_code: r.exitCode };
    }
    case 'read_file': {
      const buf = await ctx.driver.readFile(ctx.containerId, resolvePath(input.path)).catch((e: Error) => e);
      if (buf instanceof Error) return { content: `Cannot read ${resolvePath(input.path)}: ${buf.message}`, is_error: true };
      return { content: clip(buf.toString('utf8')), is_error: false };
    }
    case 'write_file': {
      if (typeof input.content !== 'string') return { content: 'write_file needs a "content" string', is_error: true };
      const p = resolvePath(input.path);
      const err = await ctx.driver.writeFile(ctx.containerId, p, input.content).then(() => null, (e: Error) => e);
      return err ? { content: `Cannot write ${p}: ${err.message}`, is_error: true } : { content: `Wrote ${Buffer.byteLength(input.content)} bytes to ${p}`, is_error: false };
    }
    case 'edit_file': {
      const p = resolvePath(input.path);
      const oldS = String(input.old_string ?? '');
      const buf = await ctx.driver.readFile(ctx.containerId, p).catch((e: Error) => e);
      if (buf instanceof Error) return { content: `Cannot read ${p}: ${buf.message}`, is_error: true };
      const text = buf.toString('utf8');
      const count = oldS ? text.split(oldS).length - 1 : 0;
      if (count !== 1) return { content: `old_string must occur exactly once in ${p}; found ${count} occurrences`, is_error: true };
      await ctx.driver.writeFile(ctx.containerId, p, text.replace(oldS, () => String(input.new_string ?? '')));
      return { content: `Edited ${p}`, is_error: false };
    }
    case 'list_files': {
      const p = resolvePath(input.path ?? '/workspace');
      const r = await ctx.driver.exec(ctx.containerId, { command: `find ${shellQuote(p)} -maxdepth 2 | sort | head -500`, timeoutMs: 15_000, signal: ctx.signal });
      return { content: clip(r.stdout || r.stderr), is_error: r.exitCode !== 0, exit_code: r.exitCode };
    }
    case 'finish':
      // Ends the session; the actor records the summary as the result.
      return { content: String(input.summary ?? '') || 'finished', is_error: false };
    default:
      return { content: `Unknown tool "${name}". Available: ${BUILTIN_TOOLS.map((t) => t.name).join(', ')}`, is_error: true };
  }
}
