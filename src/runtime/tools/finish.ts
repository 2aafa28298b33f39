/** `finish`: the agent says the task is done; the actor completes the session with the summary. */
import type { ToolDefinition, ToolFamily } from './types.js';

const FINISH: ToolDefinition = {
  name: 'finish',
  description: 'Call when the task is complete, with a short summary of what was done. Ends the session.',
  input_schema: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] },
};

/** `offer`: whether the model is offered it (the agent type's tool list); it runs either way. */
export function finishTool(offer: (name: string) => boolean = () => true): ToolFamily {
  return {
    definitions: offer(FINISH.name) ? [FINISH] : [],
    has: (name) => name === FINISH.name,
    async run(call) {
      const summary = String(call.input.summary ?? '');
      return { content: summary || 'finished', is_error: false, finish: { summary } };
    },
  };
}
