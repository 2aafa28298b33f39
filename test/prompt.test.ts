import { expect } from 'chai';
import { buildSystemPrompt, DEFAULT_SYSTEM_PROMPT, triggeredSkills, type Skill } from '../src/runtime/prompt.js';

const skill = (skill_name: string, triggers: string[]): Skill => ({ skill_name, skill_content: `how to ${skill_name}`, triggers });

describe('prompt builder (pure)', () => {
  it("uses the agent's prompt, else its type's default, else ours, and says where the agent works", () => {
    const p = (agentPrompt: string | null, typePrompt: string | null) => buildSystemPrompt({ agentPrompt, typePrompt, skills: [], userTexts: [] });
    expect(p('Be terse.', 'Type default')).to.equal('Be terse.\n\nYour working directory is /workspace inside the sandbox.');
    expect(p(null, 'Type default')).to.match(/^Type default\n\n/);
    expect(p('', '')).to.match(new RegExp(`^${DEFAULT_SYSTEM_PROMPT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n\n`));
  });

  it('adds a skill once a trigger appears in anything the user said: whole words, any case, in order of the skills', () => {
    const skills = [skill('deploy', ['deploy', 'ship it']), skill('sql', ['postgres']), skill('regex', ['a.b'])];
    expect(triggeredSkills(skills, ['Please DEPLOY now']).map((s) => s.skill_name)).to.deep.equal(['deploy']);
    expect(triggeredSkills(skills, ['redeployment plans'])).to.deep.equal([]);
    expect(triggeredSkills(skills, ['first', 'then Ship It and use Postgres']).map((s) => s.skill_name)).to.deep.equal(['deploy', 'sql']);
    // Triggers are text, not patterns.
    expect(triggeredSkills(skills, ['axb'])).to.deep.equal([]);
    expect(triggeredSkills(skills, ['see a.b'])).to.have.length(1);
    expect(triggeredSkills([skill('empty', [''])], ['anything'])).to.deep.equal([]);

    const prompt = buildSystemPrompt({ agentPrompt: 'Base', skills, userTexts: ['use postgres'] });
    expect(prompt).to.equal('Base\n\nYour working directory is /workspace inside the sandbox.\n\n## Skill: sql\n\nhow to sql');
  });
});
