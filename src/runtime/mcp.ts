/**
 * MCP servers of an agent, offered to its model as tools named `mcp__<server>__<tool>`.
 * - stdio servers run inside the session's sandbox: the server's command is started through the
 *   sandbox driver (execStream) with its env, speaking newline-delimited JSON-RPC over its
 *   stdin/stdout;
 * - http servers (Streamable HTTP) are called from the worker; their env entries are sent as
 *   request headers (e.g. Authorization).
 * A server that does not start or answer within the connect timeout is skipped (logged), so a
 * broken MCP server never blocks a session.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { outbound } from '../lib/outbound.js';
import type { Logger } from '../log.js';
import type { ToolDefinition } from './providers/types.js';
import type { ExecStream, SandboxDriver } from './sandbox/driver.js';

const CONNECT_TIMEOUT_MS = 15_000;
const CALL_TIMEOUT_MS = 120_000;

/** One enabled MCP server of the agent, its env already unsealed. */
export type McpServerConfig =
  | { name: string; transport: 'http'; url: string; env: Record<string, string> }
  | { name: string; transport: 'stdio'; command: string; args: string[]; env: Record<string, string> };

/** Where stdio servers run: the session's container, through the injected driver. */
export interface McpSandbox {
  driver: SandboxDriver;
  containerId: string;
}

/** JSON-RPC over the stdio of a process the driver started in the sandbox. */
class SandboxStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private proc?: ExecStream;
  private readonly buffer = new ReadBuffer();

  constructor(private readonly sandbox: McpSandbox, private readonly argv: string[], private readonly env: Record<string, string>, private readonly log: Logger) {}

  async start(): Promise<void> {
    const proc = await this.sandbox.driver.execStream(this.sandbox.containerId, { argv: this.argv, env: this.env, workdir: '/workspace' });
    this.proc = proc;
    proc.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        let msg: JSONRPCMessage | null;
        try {
          msg = this.buffer.readMessage();
        } catch (err) {
          this.onerror?.(err as Error);
          continue;
        }
        if (!msg) break;
        this.onmessage?.(msg);
      }
    });
    proc.stderr.on('data', (c: Buffer) => this.log.debug({ mcp: this.argv[0], stderr: String(c).slice(0, 500) }, 'mcp stderr'));
    proc.stdout.on('error', (err: Error) => this.onerror?.(err));
    void proc.exited.then(() => this.onclose?.());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    this.proc?.stdin.write(serializeMessage(message));
  }

  async close(): Promise<void> {
    // EOF on stdin, as the MCP stdio transport shuts a server down. No kill: that would exec into
    // a container that may be being frozen right now (the session is pausing).
    this.proc?.close();
  }
}

interface Server {
  name: string;
  client: Client;
}

const toolName = (server: string, tool: string) => `mcp__${server}__${tool}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);

export class McpToolbox {
  private readonly routes = new Map<string, { server: Server; tool: string }>();
  private readonly defs: ToolDefinition[] = [];
  private readonly servers: Server[] = [];

  /** Connects to every server (in parallel); never throws: a server that fails is left out. */
  static async open(servers: McpServerConfig[], sandbox: McpSandbox, log: Logger): Promise<McpToolbox> {
    const box = new McpToolbox();
    await Promise.all(servers.map((s) => box.connect(s, sandbox, log)));
    return box;
  }

  private async connect(cfg: McpServerConfig, sandbox: McpSandbox, log: Logger) {
    const client = new Client({ name: 'troupe', version: '0.1.0' });
    try {
      const transport: Transport = cfg.transport === 'http'
        // Through the outbound guard: private, loopback and metadata addresses only when allowed.
        ? new StreamableHTTPClientTransport(new URL(cfg.url), { requestInit: { headers: cfg.env }, fetch: outbound().fetch('mcp') })
        : new SandboxStdioTransport(sandbox, [cfg.command, ...cfg.args], cfg.env, log);
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      const { tools } = await client.listTools(undefined, { timeout: CONNECT_TIMEOUT_MS });
      const server = { name: cfg.name, client };
      this.servers.push(server);
      for (const t of tools) {
        const name = toolName(server.name, t.name);
        this.routes.set(name, { server, tool: t.name });
        this.defs.push({ name, description: `[MCP ${server.name}] ${t.description ?? t.name}`, input_schema: (t.inputSchema ?? { type: 'object' }) as Record<string, unknown> });
      }
    } catch (err) {
      // Never log env values; the server name and the reason are enough.
      log.warn({ mcp: cfg.name, reason: (err as Error).message }, 'MCP server unavailable; its tools are not offered');
      await client.close().catch(() => {});
    }
  }

  tools(): ToolDefinition[] {
    return this.defs;
  }

  has(name: string): boolean {
    return this.routes.has(name);
  }

  async call(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<{ content: string; is_error: boolean }> {
    const r = this.routes.get(name)!;
    try {
      const res = await r.server.client.callTool({ name: r.tool, arguments: input }, undefined, { signal, timeout: CALL_TIMEOUT_MS });
      const blocks = (res.content ?? []) as Array<{ type: string; text?: string }>;
      const text = blocks.map((b) => (b.type === 'text' ? b.text : `[${b.type} content]`)).join('\n');
      return { content: text, is_error: Boolean(res.isError) };
    } catch (err) {
      return { content: `MCP tool ${r.tool} on ${r.server.name} failed: ${(err as Error).message}`, is_error: true };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.client.close().catch(() => {})));
  }
}
