/**
 * How the CLI writes: color only on a TTY (and never with NO_COLOR; FORCE_COLOR forces it),
 * tables for lists, and a progress line on stderr for long waits (a spinner with the elapsed
 * time on a TTY, one line otherwise) so stdout stays clean for pipes and --json.
 */
import type { StreamEvent } from './stream.js';

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39], magenta: [35, 39], cyan: [36, 39], gray: [90, 39] } as const;
export type Color = keyof typeof CODES;

export function colorEnabled(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY);
}

export function painter(stream: NodeJS.WriteStream) {
  const on = colorEnabled(stream);
  return (color: Color, text: string) => (on ? `\u001b[${CODES[color][0]}m${text}\u001b[${CODES[color][1]}m` : text);
}

export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (!rows.length) return '(none)\n';
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)).replace(/\s+/g, ' ').slice(0, 60);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd() + '\n';
  return line(columns.map((c) => c.toUpperCase())) + rows.map((r) => line(columns.map((c) => cell(r[c])))).join('');
}

/**
 * A progress line on stderr while something long happens. Shown only once the wait has lasted a
 * moment (a replayed `queued` status, gone the next instant, shows nothing): on a TTY a spinner
 * with the elapsed time, cleared when the wait ends; otherwise one line.
 */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private delay: NodeJS.Timeout | undefined;
  private started = Date.now();
  private frame = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private text = '';

  constructor(private readonly afterMs = 1000) {}

  start(text: string): this {
    this.stop();
    this.text = text;
    this.started = Date.now();
    this.delay = setTimeout(() => {
      this.delay = undefined;
      if (!this.tty) {
        process.stderr.write(`${this.text}...\n`);
        return;
      }
      this.timer = setInterval(() => this.draw(), 100);
      this.draw();
    }, this.afterMs);
    return this;
  }

  private draw() {
    const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[this.frame++ % 10];
    const secs = Math.floor((Date.now() - this.started) / 1000);
    process.stderr.write(`\r\u001b[2K${spin} ${this.text} (${secs}s)`);
  }

  stop(): void {
    if (this.delay) clearTimeout(this.delay);
    this.delay = undefined;
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      process.stderr.write('\r\u001b[2K');
    }
  }
}

/**
 * Renders a session's stream for people: text as it streams, tool calls and their output, status
 * changes. Durable events repeat what live frames already showed (a replay has only durable
 * ones), so each is printed only when its live counterpart was not.
 */
export class TailRenderer {
  private readonly paint = painter(process.stdout);
  private midLine = false;
  private streamedText = false;
  private readonly startedTools = new Set<string>();
  private readonly outputTools = new Set<string>();

  constructor(private readonly out: (s: string) => void = (s) => process.stdout.write(s)) {}

  private line(s: string) {
    if (this.midLine) this.out('\n');
    this.midLine = false;
    this.out(s + '\n');
  }

  render(e: StreamEvent): void {
    const p = this.paint;
    switch (e.type) {
      case 'text_delta':
        this.out(e.data.delta);
        this.midLine = !e.data.delta.endsWith('\n');
        this.streamedText = true;
        break;
      case 'text_complete':
        if (!this.streamedText && e.data.text) this.line(e.data.text);
        else if (this.midLine) this.line('');
        this.streamedText = false;
        break;
      case 'user_message': {
        const text = String(e.data.payload?.message ?? '');
        this.line(p('green', `> ${text}`));
        break;
      }
      case 'tool_use_start':
        this.startedTools.add(e.data.tool_use_id);
        this.line(p('cyan', `▸ ${e.data.name} ${summarize(e.data.input)}`));
        break;
      case 'tool_use_complete': {
        const id = String(e.data.payload?.tool_use_id ?? e.data.payload?.id ?? '');
        if (!this.startedTools.has(id)) this.line(p('cyan', `▸ ${e.data.payload?.name ?? 'tool'} ${summarize(e.data.payload?.input)}`));
        break;
      }
      case 'tool_output_delta':
        this.outputTools.add(e.data.tool_use_id);
        this.out(p(e.data.stream === 'stderr' ? 'yellow' : 'gray', e.data.chunk));
        this.midLine = !e.data.chunk.endsWith('\n');
        break;
      case 'tool_result': {
        const pl = e.data.payload ?? {};
        const id = String(pl.tool_use_id ?? '');
        if (!this.outputTools.has(id)) {
          const content = typeof pl.content === 'string' ? pl.content : JSON.stringify(pl.content ?? pl.output ?? '');
          if (content) this.line(p(pl.is_error ? 'red' : 'gray', content.length > 2000 ? content.slice(0, 2000) + ' …' : content));
        } else if (this.midLine) this.line('');
        if (pl.is_error) this.line(p('red', '✗ tool failed'));
        break;
      }
      case 'status': {
        const st = String(e.data.payload?.status ?? '');
        const color: Color = st === 'completed' ? 'green' : st === 'failed' ? 'red' : st === 'stopped' ? 'magenta' : 'yellow';
        const why = e.data.payload?.reason ? ` (${e.data.payload.reason})` : '';
        this.line(p(color, `● ${st}${why}`));
        break;
      }
      case 'session_error':
        this.line(p('red', `✗ ${e.data.payload?.message ?? e.data.payload?.error ?? JSON.stringify(e.data.payload)}`));
        break;
      case 'live_truncated':
        this.line(p('yellow', `… ${e.data.dropped_bytes} bytes of earlier output were dropped`));
        break;
      case 'session_completed':
        this.line(p('green', '✓ session completed'));
        break;
      case 'session_failed':
        this.line(p('red', `✗ session failed${e.data.error ? `: ${e.data.error}` : ''}`));
        break;
    }
  }

  finish(): void {
    if (this.midLine) this.out('\n');
    this.midLine = false;
  }
}

function summarize(input: unknown): string {
  if (input && typeof input === 'object' && 'command' in input) return String((input as { command: unknown }).command);
  const s = JSON.stringify(input ?? {});
  return s.length > 200 ? s.slice(0, 200) + '…' : s;
}
