/**
 * README's walkthrough with the SDK (section "The walkthrough with the SDK"): a project, a
 * scripted agent, a session followed live, paused while its tool runs and resumed, a reply to a
 * message, and a stopped session.
 *
 *   TROUPE_URL=http://localhost:3000 TOKEN=$(npm run -s token -- --user alice) npx tsx packages/client/examples/walkthrough.ts
 */
import { TroupeClient } from '@troupe/client';

const troupe = new TroupeClient({ baseUrl: process.env.TROUPE_URL ?? 'http://localhost:3000', token: process.env.TOKEN! });

// 1. A project (you become its owner)
const project = await troupe.projects.create({ name: 'demo' });

// 2. A scripted agent: its "model" writes a file with bash, reads it back, then finishes.
const agent = await troupe.agents.create(project.id, {
  name: 'Dev Bot', handle: 'dev-bot', agent_type_id: 'developer', llm_provider: 'scripted',
  script: { token_delay_ms: 50, turns: [
    { text: 'I will write the file.', tool_calls: [{ name: 'bash', input: { command: 'echo hello > hello.txt && sleep 5 && cat hello.txt' } }] },
    { text: 'Done.', tool_calls: [{ name: 'finish', input: { summary: 'wrote hello.txt' } }] },
  ] },
});

// 3. Start a session (its own sandbox container) with a first message
const session = await troupe.sessions.create({ agent_id: agent.handle, project_id: project.id, message: 'write hello.txt' });

// 4-6. Watch it work live; pause while the bash tool sleeps, resume two seconds later. The
// iterator resumes by itself if the connection drops, and ends when the session does.
let paused = false;
for await (const e of troupe.sessions.stream(session.id)) {
  if (e.type === 'text_delta') process.stdout.write(e.data.delta);
  if (e.type === 'tool_use_start') console.log(`\n▸ ${e.data.name}`, e.data.input);
  if (e.type === 'tool_output_delta') process.stdout.write(e.data.chunk);
  if (e.type === 'status') console.log(`\n● ${e.data.payload.status}`);
  if (e.type === 'tool_use_start' && !paused) {
    paused = true;
    await troupe.sessions.pause(project.id, session.id); // {status: 'paused'}: the container is frozen
    setTimeout(() => void troupe.sessions.resume(project.id, session.id), 2000);
  }
}
const done = await troupe.sessions.get(session.id);
console.log(done.status, done.messages.map((m) => m.role));

// A message and its reply (seed 002): resolves with the agent's reply message.
const chatty = await troupe.agents.create(project.id, { name: 'Chatty', llm_provider: 'scripted', script: { turns: [{ text: 'Hi! How can I help?' }] } });
const s1 = await troupe.sessions.create({ agent_id: chatty.id, project_id: project.id });
const reply = await troupe.sessions.send(s1.id, 'hello');
console.log(reply.content);

// 7. Stop a session for good (its container is removed)
const s2 = await troupe.sessions.create({ agent_id: 'dev-bot', project_id: project.id });
console.log(await troupe.sessions.stop(project.id, s2.id)); // {status: 'stopped'}
