/**
 * An agent's MCP servers (agent_mcp_servers). The env values are secrets: sealed together as one
 * JSON object (lib/secrets.ts); only their names are kept in the clear, in env_keys.
 */
import { db, type Db } from '../knex.js';

export type McpTransport = 'stdio' | 'http';

export interface McpServerRow {
  id: string;
  agent_id: string;
  server_name: string;
  transport: McpTransport;
  command: string | null;
  args: string[];
  /** Sealed JSON of the env; never returned. */
  env_sealed: string | null;
  env_keys: string[];
  url: string | null;
  is_enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export type McpServerChanges = Partial<Pick<McpServerRow,
  'server_name' | 'transport' | 'command' | 'args' | 'env_sealed' | 'env_keys' | 'url' | 'is_enabled'>>;

export type NewMcpServer = McpServerChanges & Pick<McpServerRow, 'agent_id'>;

/** jsonb arrays are written as JSON text (else they would be taken for Postgres arrays). */
function encode(changes: McpServerChanges): Record<string, unknown> {
  const cols: Record<string, unknown> = { ...changes };
  if ('args' in changes) cols.args = JSON.stringify(changes.args);
  if ('env_keys' in changes) cols.env_keys = JSON.stringify(changes.env_keys);
  return cols;
}

/** The agent's servers, oldest first. */
export async function ofAgent(agentId: string): Promise<McpServerRow[]> {
  return db('agent_mcp_servers').where({ agent_id: agentId }).orderBy('created_at');
}

/** The servers a session starts (enabled), oldest first. */
export async function enabledOfAgent(agentId: string): Promise<McpServerRow[]> {
  return db('agent_mcp_servers').where({ agent_id: agentId, is_enabled: true }).orderBy('created_at');
}

/** The agent's server with this id (a uuid). */
export async function byIdOfAgent(agentId: string, id: string): Promise<McpServerRow | undefined> {
  return db('agent_mcp_servers').where({ id, agent_id: agentId }).first();
}

export async function nameTaken(agentId: string, serverName: string): Promise<boolean> {
  return Boolean(await db('agent_mcp_servers').where({ agent_id: agentId, server_name: serverName }).first('id'));
}

export async function insert(server: NewMcpServer): Promise<McpServerRow> {
  const [row] = await db('agent_mcp_servers').insert(encode(server)).returning('*');
  return row as McpServerRow;
}

/** Locks the row (in `tx`) and reads it, so a decision on where its env goes holds until commit. */
export async function byIdForUpdate(id: string, tx: Db): Promise<McpServerRow> {
  return tx('agent_mcp_servers').where({ id }).forUpdate().first();
}

/** Updates the given columns and updated_at; the updated row. */
export async function update(id: string, changes: McpServerChanges, conn: Db = db): Promise<McpServerRow> {
  const [row] = await conn('agent_mcp_servers').where({ id }).update({ ...encode(changes), updated_at: conn.fn.now() }).returning('*');
  return row as McpServerRow;
}

export async function remove(id: string): Promise<void> {
  await db('agent_mcp_servers').where({ id }).del();
}
