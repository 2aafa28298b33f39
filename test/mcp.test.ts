import { expect } from 'chai';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { call, newProject, newAgent, sessionWorker, waitFor } from './support/harness.js';
import { db } from '../src/db/knex.js';

/** A tiny MCP stdio server in Python, for the default image (which has python3). */
const PY_SERVER = `
import json, sys, os
for line in sys.stdin:
    m = json.loads(line)
    if 'id' not in m: continue
    r = {}
    if m['method'] == 'initialize':
        r = {'protocolVersion': m['params']['protocolVersion'], 'capabilities': {'tools': {}}, 'serverInfo': {'name': 'py', 'version': '1'}}
    elif m['method'] == 'tools/list':
        r = {'tools': [{'name': 'whoami', 'description': 'who runs me', 'inputSchema': {'type': 'object', 'properties': {}}}]}
    elif m['method'] == 'tools/call':
        r = {'content': [{'type': 'text', 'text': 'uid=%d token=%s' % (os.getuid(), os.environ.get('SECRET_TOKEN', '')[:3])}]}
    print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': r}), flush=True)
`;

describe('MCP servers as tools', function () {
  this.timeout(60_000);
  before(() => sessionWorker());

  it('http: the worker calls a Streamable HTTP MCP server; its tool result reaches the model', async () => {
    const server = http.createServer(async (req, res) => {
      const mcp = new McpServer({ name: 'calc', version: '1.0.0' });
      mcp.registerTool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
        content: [{ type: 'text', text: String(a + b) }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void transport.close());
      await mcp.connect(transport);
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => void transport.handleRequest(req, res, body ? JSON.parse(body) : undefined));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { owner, projectId } = await newProject();
      const agent = await newAgent(projectId, owner.token, {
        script: { turns: [{ text: 'adding', tool_calls: [{ name: 'mcp__calc__add', input: { a: 2, b: 40 } }] }, { text: 'done' }] },
      });
      const m = await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/mcp-servers`, { token: owner.token, body: { server_name: 'calc', transport: 'http', url: `http://127.0.0.1:${port}/mcp` } });
      expect(m.status).to.equal(201);
      const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'add' } });
      await waitFor('idle', async () => (await db('sessions').where({ id: s.body.id }).first()).status === 'idle');
      const result = await db('session_events').where({ session_id: s.body.id, event_type: 'tool_result' }).first();
      expect(result.payload).to.include({ name: 'mcp__calc__add', content: '42', is_error: false });
    } finally {
      server.close();
    }
  });

  it('stdio: the server runs inside the sandbox with its (secret) env; its tool is offered and called', async function () {
    const { owner, projectId } = await newProject();
    const agent = await newAgent(projectId, owner.token, {
      sandbox: { image: 'troupe-sandbox-default:latest' },
      script: { turns: [{ text: 'asking', tool_calls: [{ name: 'mcp__py__whoami', input: {} }] }, { text: 'done' }] },
    });
    await call('POST', `/api/v1/projects/${projectId}/agents/${agent.id}/mcp-servers`, {
      token: owner.token, body: { server_name: 'py', transport: 'stdio', command: 'python3', args: ['-c', PY_SERVER], env: { SECRET_TOKEN: 'abcdef' } },
    });
    const s = await call('POST', '/api/v1/sessions', { token: owner.token, body: { agent_id: agent.id, message: 'who?' } });
    await waitFor('idle', async () => (await db('sessions').where({ id: s.body.id }).first()).status === 'idle', 40_000);
    const result = await db('session_events').where({ session_id: s.body.id, event_type: 'tool_result' }).first();
    expect(result.payload).to.include({ name: 'mcp__py__whoami', content: 'uid=1000 token=abc', is_error: false });
  });
});
