/**
 * The system prompt of a model call: the agent's prompt (else its type's default, else ours), where
 * it works, and the skills the conversation has triggered so far. Pure: same input, same prompt.
 */

export const DEFAULT_SYSTEM_PROMPT =
  'You are an agent working in a sandboxed Linux container. Use the tools to do the task; call finish with a summary when done.';
const WORKDIR_NOTE = 'Your working directory is /workspace inside the sandbox.';

export interface Skill {
  skill_name: string;
  skill_content: string;
  /** Words or phrases; any of them in a user message brings the skill in. */
  triggers: string[];
}

export interface PromptInput {
  /** The agent's own system prompt. */
  agentPrompt?: string | null;
  /** Its agent type's default system prompt. */
  typePrompt?: string | null;
  /** The agent's enabled skills. */
  skills: Skill[];
  /** Everything the user has said in the session, in order. */
  userTexts: string[];
}

/**
 * A skill joins the context once any of its triggers has appeared in a user message, as a whole
 * word or phrase, case-insensitively; it stays for the rest of the session.
 */
export function triggeredSkills(skills: Skill[], userTexts: string[]): Skill[] {
  const said = userTexts.join('\n').toLowerCase();
  return skills.filter((s) => (s.triggers ?? []).some((t) => t && new RegExp(`\\b${escapeRe(t.toLowerCase())}\\b`).test(said)));
}

export function buildSystemPrompt(input: PromptInput): string {
  const base = input.agentPrompt || input.typePrompt || DEFAULT_SYSTEM_PROMPT;
  const parts = [base, WORKDIR_NOTE];
  for (const s of triggeredSkills(input.skills, input.userTexts)) parts.push(`## Skill: ${s.skill_name}\n\n${s.skill_content}`);
  return parts.join('\n\n');
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
