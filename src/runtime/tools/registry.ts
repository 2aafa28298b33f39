/** The tools of one activation: its families behind the same interface as one family. */
import type { ToolCall, ToolDefinition, ToolFamily, ToolOutcome, ToolRunContext } from './types.js';

export class ToolRegistry implements ToolFamily {
  readonly definitions: ToolDefinition[];

  /** Families in the order their tools are offered; names never overlap (MCP tools are prefixed). */
  constructor(private readonly families: ToolFamily[]) {
    this.definitions = families.flatMap((f) => f.definitions);
  }

  has(name: string): boolean {
    return this.families.some((f) => f.has(name));
  }

  run(call: ToolCall, ctx: ToolRunContext): Promise<ToolOutcome> {
    const family = this.families.find((f) => f.has(call.name));
    if (family) return family.run(call, ctx);
    return Promise.resolve({
      content: `Unknown tool "${call.name}". Available: ${this.definitions.map((t) => t.name).join(', ')}`,
      is_error: true,
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.families.map((f) => f.close?.().catch(() => {})));
  }
}
