/** Real streaming clients for tests: the `eventsource` package and socket.io-client. */
import { EventSource } from 'eventsource';
import { io, type Socket } from 'socket.io-client';

export interface SseFrame {
  event: string;
  id: string | null;
  data: any;
}

export const SSE_EVENTS = [
  'text_delta', 'text_complete', 'tool_use_start', 'tool_use_complete', 'tool_output_delta', 'tool_result',
  'status', 'session_completed', 'session_failed', 'keepalive', 'user_message', 'session_error', 'pr_created',
];

/** Opens an SSE stream; frames accumulate in `frames`; `ended` resolves when the server closes it. */
export function openStream(url: string, token: string, lastEventId?: string) {
  const frames: SseFrame[] = [];
  let closedByServer!: () => void;
  const ended = new Promise<void>((r) => (closedByServer = r));
  const es = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}`, ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) },
      }),
  });
  for (const name of SSE_EVENTS) {
    es.addEventListener(name, (ev: MessageEvent) => {
      frames.push({ event: name, id: ev.lastEventId || null, data: JSON.parse(ev.data) });
      if (name === 'session_completed' || name === 'session_failed') {
        es.close();
        closedByServer();
      }
    });
  }
  es.onerror = () => {
    // The server ended the stream (or it failed): stop, don't reconnect on our own.
    es.close();
    closedByServer();
  };
  return { es, frames, ended, close: () => es.close() };
}

export async function connectDashboard(url: string, token: string): Promise<{ socket: Socket; received: Array<[string, any]> }> {
  const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
  const received: Array<[string, any]> = [];
  socket.onAny((name, data) => received.push([name, data]));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return { socket, received };
}

export function subscribe(socket: Socket, arg: unknown): Promise<any> {
  return socket.timeout(5000).emitWithAck('subscribe', arg);
}
