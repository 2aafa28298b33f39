/** The /metrics access decision and the tool label (issue 12, finding 9): pure, no services. */
import { expect } from 'chai';
import { metricsAccess, toolLabel } from '../../src/lib/metrics.js';

const TOKEN = 'metrics-token-0123456789abcdef';
const req = (remoteAddress: string, opts: { forwarded?: boolean; authorization?: string } = {}) =>
  ({ remoteAddress, forwarded: opts.forwarded ?? false, authorization: opts.authorization });

describe('metrics: who may read /metrics', () => {
  it('without a token: loopback clients only (IPv4, IPv6, v4-mapped); others and relayed requests are forbidden', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) expect(metricsAccess(req(a), undefined), a).to.equal('ok');
    for (const a of ['10.0.0.5', '192.168.1.2', '203.0.113.7', '::ffff:10.0.0.5', 'fe80::1', '']) expect(metricsAccess(req(a), undefined), a).to.equal('forbidden');
    // A reverse proxy on this machine relays the internet from a loopback socket.
    expect(metricsAccess(req('127.0.0.1', { forwarded: true }), undefined)).to.equal('forbidden');
    // A token sent to a server that has none opens nothing.
    expect(metricsAccess(req('10.0.0.5', { authorization: `Bearer ${TOKEN}` }), undefined)).to.equal('forbidden');
  });

  it('with TROUPE_METRICS_TOKEN: a non-loopback client with the bearer token is let in; a wrong or missing one is 401', () => {
    expect(metricsAccess(req('10.0.0.5', { authorization: `Bearer ${TOKEN}` }), TOKEN)).to.equal('ok');
    expect(metricsAccess(req('203.0.113.7', { forwarded: true, authorization: `bearer ${TOKEN}` }), TOKEN)).to.equal('ok');
    expect(metricsAccess(req('10.0.0.5', { authorization: `Bearer ${TOKEN}x` }), TOKEN)).to.equal('unauthorized');
    expect(metricsAccess(req('10.0.0.5', { authorization: 'Bearer short' }), TOKEN)).to.equal('unauthorized');
    expect(metricsAccess(req('10.0.0.5'), TOKEN)).to.equal('unauthorized');
    // Loopback still needs nothing; a wrong token from loopback is still wrong.
    expect(metricsAccess(req('127.0.0.1'), TOKEN)).to.equal('ok');
    expect(metricsAccess(req('127.0.0.1', { authorization: 'Bearer nope' }), TOKEN)).to.equal('unauthorized');
  });
});

describe('metrics: tool labels', () => {
  it('keeps known tool names, collapses MCP tools into "mcp" and anything else into "other"', () => {
    for (const t of ['bash', 'read_file', 'write_file', 'edit_file', 'list_files', 'finish', 'task_reply', 'task_update_status', 'create_pull_request']) expect(toolLabel(t)).to.equal(t);
    expect(toolLabel('mcp__github__create_issue')).to.equal('mcp');
    for (const t of ['made_up_tool', 'bash2', '', 'x'.repeat(500), '__proto__']) expect(toolLabel(t)).to.equal('other');
  });
});
