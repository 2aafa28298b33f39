/**
 * @troupe/client/browser: the client for web pages (the dashboard, or yours). The same typed
 * resources, session stream and Socket.IO subscription as the main entry, without what needs
 * Node: webhook verification (node:crypto HMAC), the CLI's config files, and `agents.connect`
 * (the agent WebSocket sends its key in a header that only Node's `ws` can set).
 */
export { TroupeClient, Projects, Agents, Sessions, Sandboxes, Chats, Pairs, Hub, type IdempotentOptions } from './client.js';
export { type ClientOptions, VERSION } from './http.js';
export { TroupeError, TroupeConnectionError } from './errors.js';
export { type StreamEvent, type StreamEventType, type StreamOptions, type LiveFields } from './stream.js';
export { ProjectSubscription, type ProjectEvents, type ProjectEvent, type SubscribeOptions } from './realtime.js';
export * from './types.js';
export type { paths, operations, components } from './generated/openapi.js';
