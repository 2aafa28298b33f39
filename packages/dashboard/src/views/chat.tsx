/**
 * Chat with an agent: the caller's chats with the chosen agent, and one chat's messages with a
 * box to send the next. Replies arrive as the agent's conversation answers (re-read every few
 * seconds while a reply is awaited; the conversation itself can be watched live in its session view).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Agent, type ChatMessage, type ChatSession as Chat } from '../api';
import { Empty, ErrorBox, Field, Form, Link, Loading, StatusBadge, useLoad, when } from '../ui';

export function ChatView({ pid }: { pid: string }) {
  const agents = useLoad<Agent[]>(() => api.agents(pid), [pid]);
  const [agentId, setAgentId] = useState('');
  const [chatId, setChatId] = useState<string | null>(null);
  const aid = agentId || agents.data?.[0]?.id || '';
  const chats = useLoad<Chat[] | null>(() => (aid ? api.chats(pid, aid) : Promise.resolve(null)), [pid, aid]);
  const [first, setFirst] = useState('');
  if (agents.error) return <ErrorBox error={agents.error} />;
  if (!agents.data) return <Loading />;
  if (!agents.data.length) return <Empty>No agents yet — <Link href={`/p/${pid}/agents`}>create one</Link> to chat with it.</Empty>;
  return (
    <div class="chat-layout">
      <aside class="card">
        <Field label="Agent">
          <select value={aid} onChange={(e) => { setAgentId(e.currentTarget.value); setChatId(null); }}>
            {agents.data.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
        <ErrorBox error={chats.error} />
        {chats.data && chats.data.length === 0 ? <p class="muted">No chats with this agent yet — say something below.</p> : null}
        <ul class="plain-list">
          {(chats.data ?? []).map((c) => (
            <li key={c.id}><button type="button" class={c.id === chatId ? 'link on' : 'link'} onClick={() => setChatId(c.id)}>{c.title || 'Chat'} <span class="muted small">{when(c.created_at)}</span></button></li>
          ))}
        </ul>
        <Form submit="New chat" onSubmit={async () => {
          const c = await api.startChat(pid, aid, first.trim());
          setFirst('');
          await chats.reload();
          setChatId(c.id);
        }}>
          <Field label="First message"><input required value={first} onInput={(e) => setFirst(e.currentTarget.value)} /></Field>
        </Form>
      </aside>
      <section class="card">
        {chatId ? <ChatThread pid={pid} chatId={chatId} /> : <p class="muted">Pick a chat, or start a new one.</p>}
      </section>
    </div>
  );
}

function ChatThread({ pid, chatId }: { pid: string; chatId: string }) {
  const msgs = useLoad<ChatMessage[]>(() => api.chatMessages(pid, chatId), [pid, chatId]);
  const [text, setText] = useState('');
  const awaiting = (msgs.data ?? []).length > 0 && msgs.data![msgs.data!.length - 1].role !== 'agent';
  useEffect(() => {
    if (!awaiting) return;
    const t = setInterval(() => void msgs.reload(), 2000);
    return () => clearInterval(t);
  }, [awaiting, msgs.reload]);
  return (
    <div>
      <ErrorBox error={msgs.error} />
      {!msgs.data ? <Loading /> : (
        <div class="transcript">
          {msgs.data.map((m, i) => (
            <div key={m.id ?? i} class={`msg ${m.role === 'agent' ? 'agent' : 'user'}`}>
              <div class="who">{m.role}{m.conversation_id ? <> · <Link href={`/p/${pid}/sessions/${m.conversation_id}`}>session</Link></> : null}</div>
              <div class="text">{typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}</div>
            </div>
          ))}
          {awaiting ? <p class="muted"><span class="spinner" aria-hidden="true" /> waiting for the reply… <StatusBadge status="running" /></p> : null}
        </div>
      )}
      <Form submit="Send" onSubmit={async () => { await api.sendChat(pid, chatId, text.trim()); setText(''); await msgs.reload(); }}>
        <Field label="Message"><textarea rows={2} required value={text} onInput={(e) => setText(e.currentTarget.value)} /></Field>
      </Form>
    </div>
  );
}
