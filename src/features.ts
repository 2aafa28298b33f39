// Features built on sessions register their session hooks when imported. Both the api
// (server.ts) and the worker (runtime/worker.ts) import this, since either may write events.
import './services/tasks.js';
import './services/chat.js';
import './services/pairs.js';
