/**
 * MCP servers of an agent, offered to its model as tools named `mcp__<server>__<tool>`.
 * - stdio servers run inside the session's sandbox: a `docker exec` of the server's command with
 *   its env, speaking newline-delimited JSON-RPC over the exec's stdin/stdout;
 * - http servers (Streamable HTTP) are called from the worker; their env entries are sent as
 *   request headers (e.g. Authorization).
 * A server that does not start or answer within the connect timeout is skipped (logged), so a
 * broken MCP server never blocks a session.
 */
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { db } from '../db/knex.js';
import { unsealJson } from '../lib/secrets.js';
import { outbound } from '../lib/outbound.js';
import type { Logger } from '../log.js';
import type { ToolDefinition } from './providers/types.js';

const CONNECT_TIMEOUT_MS = 15_000;
const CALL_TIMEOUT_MS = 120_000;

/** JSON-RPC over the stdio of a process started with docker exec in the sandbox. */
class DockerExecTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private stream?: Duplex;
  private readonly buffer = new ReadBuffer();

  constructor(private readonly docker: Docker, private readonly containerId: string, private readonly cmd: string[], private readonly env: Record<string, string>, private readonly log: Logger) {}

  async start(): Promise<void> {
    const exec = await this.docker.getContainer(this.containerId).exec({
      Cmd: this.cmd, Env: Object.entries(this.env).map(([k, v]) => `${k}=${v}`),
      AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, WorkingDir: '/workspace',
    });
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: false })) as Duplex;
    this.stream = stream;
    const stdout = new Writable({
      write: (chunk: Buffer, _e, done) => {
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
        done();
      },
    });
    const stderr = new Writable({ write: (c: Buffer, _e, done) => (this.log.debug({ mcp: this.cmd[0], stderr: String(c).slice(0, 500) }, 'mcp stderr'), done()) });
    this.docker.modem.demuxStream(stream, stdout, stderr);
    stream.once('close', () => this.onclose?.());
    stream.on('error', (err: Error) => this.onerror?.(err));
  }

  async send(message: JSONRPCMessage): Promise<void> {
    this.stream?.write(serializeMessage(message));
  }

  async close(): Promise<void> {
    this.stream?.destroy();
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

  static async open(agentId: string, containerId: string, docker: Docker, log: Logger): Promise<McpToolbox> {
    const box = new McpToolbox();
    const rows = await db('agent_mcp_servers').where({ agent_id: agentId, is_enabled: true });
    await Promise.all(rows.map((r) => box.connect(r, containerId, docker, log)));
    return box;
  }

  private async connect(row: Record<string, any>, containerId: string, docker: Docker, log: Logger) {
    const env = unsealJson<Record<string, string>>(row.env_sealed, {});
    const transport: Transport = row.transport === 'http'
      // Through the outbound guard: private, loopback and metadata addresses only when allowed.
      ? new StreamableHTTPClientTransport(new URL(row.url), { requestInit: { headers: env }, fetch: outbound().fetch('mcp') })
      : new DockerExecTransport(docker, containerId, [row.command, ...((row.args ?? []) as string[])], env, log);
    const client = new Client({ name: 'troupe', version: '0.1.0' });
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      const { tools } = await client.listTools(undefined, { timeout: CONNECT_TIMEOUT_MS });
      const server = { name: row.server_name as string, client };
      this.servers.push(server);
      for (const t of tools) {
        const name = toolName(server.name, t.name);
        this.routes.set(name, { server, tool: t.name });
        this.defs.push({ name, description: `[MCP ${server.name}] ${t.description ?? t.name}`, input_schema: (t.inputSchema ?? { type: 'object' }) as Record<string, unknown> });
      }
    } catch (err) {
      // Never log env values; the server name and the reason are enough.
      log.warn({ mcp: row.server_name, reason: (err as Error).message }, 'MCP server unavailable; its tools are not offered');
      await client.close().catch(() => {});
    }
  }

  tools(): ToolDefinition[] {
    return this.defs;
  }

  has(name: string): boolean {
    return this.routes.has(name);
  }

  async call(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<{ content: string; is_error: boolean; exit_code?: number }> {
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
