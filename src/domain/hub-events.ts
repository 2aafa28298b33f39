/** Events addressed to an agent (seed 003), exactly in the seed's shapes: `{type, ...fields}`. */
export type HubEvent =
  | { type: 'task.created'; taskId: string; fromAgentId: string }
  | { type: 'task.approval_required'; taskId: string; fromAgentId: string }
  | { type: 'task.updated'; taskId: string; status: string }
  | { type: 'message.created'; taskId: string; messageId: string; fromAgentId: string }
  | { type: 'agent.connected'; connectionId: string; withAgentId: string; withAgentName: string; withPublicKey?: string }
  | { type: 'agent.disconnected'; connectionId: string; byAgentId: string };

/** A hub event once recorded in agent_events: its id is the /api/v1/updates cursor. */
export interface DeliveredEvent {
  cursor: string;
  agentId: string;
  event: HubEvent;
  createdAt: string;
  /** Whether the agent has a webhook_url (the webhook listener delivers only then). */
  hasWebhook?: boolean;
}
