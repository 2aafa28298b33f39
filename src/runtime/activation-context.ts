/**
 * Everything an activation needs before its first turn, read once: the agent and its type, the
 * sandbox and its container (awake), the model provider, the tools on offer, the skills and the
 * deadline, through the repositories.
 */
import * as agents from '../db/repositories/agents.js';
import * as agentSkills from '../db/repositories/agent-skills.js';
import * as agentTypes from '../db/repositories/agent-types.js';
import * as mcpServers from '../db/repositories/agent-mcp-servers.js';
import type { McpServerRow } from '../db/repositories/agent-mcp-servers.js';
import * as sandboxes from '../db/repositories/sandboxes.js';
import type { SessionRow } from '../db/session-store.js';
import { unseal, unsealJson } from '../lib/secrets.js';
import type { Logger } from '../log.js';
import { McpToolbox, type McpServerConfig } from './mcp.js';
import type { Skill } from './prompt.js';
import { createProvider } from './providers/index.js';
import { laneDriver } from './sandbox-lane.js';
import type { ModelProvider, ProviderConfig } from './providers/types.js';
import { ensureContainer } from './sandbox/containers.js';
import type { SandboxDriver } from './sandbox/driver.js';
import { finishTool, mcpTools, pullRequestTools, shellAndFileTools, taskTools, ToolRegistry } from './tools/index.js';

/** The agent's columns the actor uses. */
export interface AgentSettings {
  id: string;
  name: string;
  handle: string;
  can_clone_repos: boolean;
  can_create_prs: boolean;
  agent_type_id: string | null;
  system_prompt: string | null;
  llm_provider: ProviderConfig['provider'];
  llm_model: string | null;
  llm_base_url: string | null;
  llm_api_key_sealed: string | null;
  script: ProviderConfig['script'];
  max_iterations: number;
  timeout_minutes: number;
  rerun_interrupted_tools?: boolean;
}

export interface ActivationContext {
  agent: AgentSettings;
  /** The agent type's default system prompt, if it has a type. */
  typePrompt: string | null;
  containerId: string;
  /** The worker's driver with every exec start on the sandbox's lane (sandbox-lane.ts laneDriver). */
  driver: SandboxDriver;
  provider: ModelProvider;
  /** Close at the end of the activation (MCP connections). */
  tools: ToolRegistry;
  skills: Skill[];
  /** When the session has run for timeout_minutes (ms since the epoch). */
  deadline: number;
}

/**
 * `workerDriver`: the one the worker injected; the container goes through it, every tool through its
 * lane wrapper, which starts nothing once `signal` (the activation's) has fired.
 */
export async function loadActivationContext(session: SessionRow, workerDriver: SandboxDriver, log: Logger, signal: AbortSignal): Promise<ActivationContext> {
  const agent = (await agents.byId(session.agent_id)) as AgentSettings | undefined;
  if (!agent) throw new Error(`agent ${session.agent_id} not found`);
  const type = agent.agent_type_id ? await agentTypes.byId(agent.agent_type_id) : undefined;
  const sandbox = await sandboxes.byId(session.sandbox_id);
  if (!sandbox) throw new Error(`sandbox ${session.sandbox_id} not found`);
  const containerId = await ensureContainer(workerDriver, sandbox, session.id, { wake: true });
  const driver = laneDriver(workerDriver, sandbox.id, signal);
  const provider = createProvider({
    provider: agent.llm_provider,
    model: agent.llm_model,
    baseUrl: agent.llm_base_url,
    apiKey: agent.llm_api_key_sealed ? unseal(agent.llm_api_key_sealed) : null,
    script: agent.script,
  });
  // A skill without content (its fetch failed at creation) has nothing to add to the prompt.
  const skills: Skill[] = (await agentSkills.enabledOfAgent(agent.id)).map((k) => ({ ...k, skill_content: k.skill_content ?? '' }));
  const mcpRows = await mcpServers.enabledOfAgent(agent.id);
  // Last, so nothing after it can fail and leave its connections open.
  const mcp = await McpToolbox.open(mcpRows.map(mcpServerConfig), { driver, containerId }, log);

  // The type's tool list limits what the model is offered of the built-in tools.
  const allowed = Array.isArray(type?.tools) && type.tools.length ? type.tools : null;
  const offer = (name: string) => !allowed || allowed.includes(name);
  const tools = new ToolRegistry([
    shellAndFileTools(offer),
    finishTool(offer),
    taskTools(session.trigger_type === 'task_assigned'),
    pullRequestTools(agent.can_create_prs && session.repository_id !== null),
    mcpTools(mcp),
  ]);

  return {
    agent,
    typePrompt: type?.default_system_prompt ?? null,
    containerId,
    driver,
    provider,
    tools,
    skills,
    deadline: new Date(session.started_at ?? Date.now()).getTime() + agent.timeout_minutes * 60_000,
  };
}

function mcpServerConfig(row: McpServerRow): McpServerConfig {
  const env = unsealJson<Record<string, string>>(row.env_sealed, {});
  return row.transport === 'http'
    ? { name: row.server_name, transport: 'http', url: String(row.url), env }
    : { name: row.server_name, transport: 'stdio', command: String(row.command), args: row.args ?? [], env };
}
