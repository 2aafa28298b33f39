/**
 * The Node entry's TroupeClient: the same client as client.ts (which the browser entry exports)
 * with `agents.connect`, the agent WebSocket, which needs Node's `ws`.
 */
import { Agents as BaseAgents, TroupeClient as BaseClient } from './client.js';
import { AgentConnection, type ConnectOptions } from './agent-connection.js';
import type { Transport } from './http.js';

export class Agents extends BaseAgents {
  /**
   * The agent WebSocket (/ws) for an agent API key: hub events as they happen, each once and in
   * order, with what was missed while disconnected read from /api/v1/updates after a reconnect.
   */
  connect(apiKey: string, opts: ConnectOptions = {}): AgentConnection {
    return new AgentConnection(this.t.baseUrl, apiKey, opts);
  }
}

export class TroupeClient extends BaseClient {
  declare readonly agents: Agents;
  protected override createAgents(t: Transport): Agents {
    return new Agents(t);
  }
}
