/** The agent's MCP servers' tools (connections live in runtime/mcp.ts). */
import type { McpToolbox } from '../mcp.js';
import type { ToolFamily } from './types.js';

export function mcpTools(box: McpToolbox): ToolFamily {
  return {
    definitions: box.tools(),
    has: (name) => box.has(name),
    run: (call, ctx) => box.call(call.name, call.input, ctx.signal),
    close: () => box.close(),
  };
}
