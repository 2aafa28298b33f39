// Importing a routes module declares its routes (see registry.ts). Order here is the order in
// /openapi.json.
import './health.js';
import './projects.js';
import './agents.js';
import './repositories.js';
import './conversations.js';
import './sandboxes.js';
import './sessions-001.js';
import './stream.js';
import './hub.js';
import './chat.js';
import './pairs.js';
import './dev.js';
import './admin.js';
