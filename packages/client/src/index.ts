/** @troupe/client: the typed client of the Troupe API (see README "SDK and CLI"). */
export { TroupeClient, Agents } from './node-client.js';
export { Projects, Sessions, Sandboxes, Chats, Pairs, Hub, type IdempotentOptions } from './client.js';
export { type ClientOptions, VERSION } from './http.js';
export { TroupeError, TroupeConnectionError } from './errors.js';
export { type StreamEvent, type StreamEventType, type StreamOptions, type LiveFields } from './stream.js';
export { ProjectSubscription, type ProjectEvents, type ProjectEvent, type SubscribeOptions } from './realtime.js';
export { AgentConnection, type ConnectOptions } from './agent-connection.js';
export { verifyWebhook, isValidWebhook, webhookSignature, WebhookVerificationError, type WebhookInput } from './webhooks.js';
export * from './types.js';
export type { paths, operations, components } from './generated/openapi.js';
