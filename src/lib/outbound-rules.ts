/**
 * The outbound guard's rules, without any I/O: which destination addresses a server-side request
 * may connect to. Parsed from TROUPE_OUTBOUND_ALLOW by config.ts; applied by lib/outbound.ts.
 *
 * Blocked unless allowed: loopback, private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local
 * (169.254/16, fe80::/10), cloud metadata, unspecified, broadcast, multicast and the other
 * special-purpose ranges; only globally routable unicast passes by default.
 */
import net from 'node:net';
import ipaddr from 'ipaddr.js';

/** What a request is for; the guard's decision can depend on it (loopback model servers in dev). */
export type OutboundPurpose = 'skill' | 'webhook' | 'model' | 'mcp' | 'forge';

export type AllowRule =
  | { kind: 'cidr'; range: [ipaddr.IPv4 | ipaddr.IPv6, number]; port?: number; text: string }
  | { kind: 'host'; host: string; port?: number; text: string };

export interface OutboundPolicy {
  allow: readonly AllowRule[];
  /** Loopback-only dev mode: model servers on loopback (Ollama on localhost:11434) are allowed. */
  loopbackModels: boolean;
}

/** Cloud metadata endpoints: only an allow entry naming the exact address opens them. */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '169.254.170.2']);

const normHost = (h: string) => h.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');

function parsePort(raw: string): number | undefined {
  const n = Number(raw);
  return /^\d{1,5}$/.test(raw) && n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * `TROUPE_OUTBOUND_ALLOW`: comma- or space-separated entries, each one of
 * `10.0.0.0/8` (CIDR), `10.1.2.3` / `fd00::1` (one address), `10.1.2.3:8080` / `[::1]:8080`
 * (address and port), `ollama.internal` (whatever that name resolves to), `ollama.internal:11434`.
 */
export function parseOutboundAllow(raw: string | undefined, problems: string[] = []): AllowRule[] {
  const rules: AllowRule[] = [];
  for (const text of (raw ?? '').split(/[\s,]+/).filter(Boolean)) {
    const bad = (why: string) => problems.push(`TROUPE_OUTBOUND_ALLOW entry ${JSON.stringify(text)}: ${why}`);
    if (text.includes('/')) {
      if (!ipaddr.isValidCIDR(text)) {
        bad('expected a CIDR such as 10.0.0.0/8 or fd00::/8');
        continue;
      }
      rules.push({ kind: 'cidr', range: ipaddr.parseCIDR(text), text });
      continue;
    }
    // "[v6]:port", "v6", "v4:port", "v4", "host:port", "host"
    let host = text;
    let port: number | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
    if (bracketed) {
      host = bracketed[1];
      if (bracketed[2] !== undefined && (port = parsePort(bracketed[2])) === undefined) {
        bad('expected a port between 1 and 65535');
        continue;
      }
    } else if (net.isIPv6(text)) {
      host = text;
    } else if (text.includes(':')) {
      const i = text.lastIndexOf(':');
      host = text.slice(0, i);
      if ((port = parsePort(text.slice(i + 1))) === undefined) {
        bad('expected a port between 1 and 65535');
        continue;
      }
    }
    if (net.isIP(host)) {
      const addr = ipaddr.process(host);
      rules.push({ kind: 'cidr', range: [addr, addr.kind() === 'ipv4' ? 32 : 128], port, text });
    } else if (/^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i.test(host)) {
      rules.push({ kind: 'host', host: normHost(host), port, text });
    } else {
      bad('expected a host name, an IP address, either with :port, or a CIDR');
    }
  }
  return rules;
}

/** A destination the guard refused; `reason` is for logs and operators, not for untrusted callers. */
export class OutboundBlockedError extends Error {
  readonly code = 'E_OUTBOUND_BLOCKED';
  constructor(readonly host: string, readonly address: string, readonly port: number, readonly range: string) {
    super(
      `outbound request to ${host}${host === address ? '' : ` (${address})`} port ${port} blocked: ${range} address; ` +
        'list it in TROUPE_OUTBOUND_ALLOW to allow it',
    );
    this.name = 'OutboundBlockedError';
  }
}

export interface Destination {
  /** The host name of the URL (or the address itself for an IP literal). */
  hostname: string;
  /** The address the socket would connect to. */
  address: string;
  port: number;
  purpose: OutboundPurpose;
}

/** The range that blocks an address, or null for a globally routable unicast address. */
export function blockedRange(address: string): string | null {
  if (!net.isIP(address)) return 'invalid';
  let addr = ipaddr.process(address); // ::ffff:127.0.0.1 → 127.0.0.1
  let range = addr.range();
  if (range === 'rfc6052' && addr.kind() === 'ipv6') {
    // NAT64 (64:ff9b::/96): judge the IPv4 address it embeds.
    const b = (addr as ipaddr.IPv6).toByteArray().slice(12);
    addr = new ipaddr.IPv4(b);
    range = addr.range();
  }
  if (METADATA.has(addr.toString())) return 'cloud metadata';
  return range === 'unicast' ? null : range;
}

/** Null when the guard lets the request through, else the blocking range (for the error). */
export function verdict(policy: OutboundPolicy, d: Destination): string | null {
  const range = blockedRange(d.address);
  if (range === null) return null;
  if (range === 'invalid') return range;
  const addr = ipaddr.process(d.address);
  const host = normHost(d.hostname);
  const metadata = range === 'cloud metadata';
  for (const rule of policy.allow) {
    if (rule.port !== undefined && rule.port !== d.port) continue;
    if (rule.kind === 'host') {
      if (rule.host === host && !metadata) return null;
      continue;
    }
    const [net0, bits] = rule.range;
    if (net0.kind() !== addr.kind() || !addr.match(net0, bits)) continue;
    // A broad range (0.0.0.0/0, 169.254.0.0/16) never opens a metadata endpoint by accident.
    if (metadata && bits !== (addr.kind() === 'ipv4' ? 32 : 128)) continue;
    return null;
  }
  if (range === 'loopback' && d.purpose === 'model' && policy.loopbackModels) return null;
  return range;
}

/** True for a HOST the server binds to that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = normHost(host);
  if (h === 'localhost') return true;
  return net.isIP(h) ? ipaddr.process(h).range() === 'loopback' : false;
}
