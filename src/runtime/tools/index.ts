/** Tool families and the registry that puts one activation's together (see types.ts). */
export { ToolRegistry } from './registry.js';
export { shellAndFileTools, SHELL_AND_FILE_TOOLS } from './shell-files.js';
export { finishTool } from './finish.js';
export { taskTools } from './tasks.js';
export { mcpTools } from './mcp.js';
export { pullRequestTools } from './pull-requests.js';
export type { ToolFamily, ToolOutcome, ToolRunContext, ToolCall, ToolDefinition } from './types.js';
