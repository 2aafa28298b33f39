/**
 * The outbound guard: every request the server makes on behalf of a user (skill fetches, webhook
 * deliveries, model provider calls, MCP http servers, and later forges or an egress proxy) goes
 * through `outbound().fetch(purpose)`, never the global fetch.
 *
 * It is an undici dispatcher whose connector resolves the host name itself, drops every address
 * the rules in outbound-rules.ts block (loopback, private, link-local, metadata, ... unless
 * TROUPE_OUTBOUND_ALLOW lists them), and connects only to an address that passed. The check runs
 * on every new connection, redirects and DNS re-resolution included, so neither a redirect nor a
 * name that resolves differently the second time (DNS rebinding) gets past it. Nothing is sent to
 * a blocked address, not even a TCP SYN.
 */
import dns from 'node:dns';
import net from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { config } from '../config.js';
import { isLoopbackHost, OutboundBlockedError, verdict, type OutboundPolicy, type OutboundPurpose } from './outbound-rules.js';

export { OutboundBlockedError, type OutboundPolicy, type OutboundPurpose } from './outbound-rules.js';

const CONNECT_TIMEOUT_MS = 10_000;

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;
const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export class OutboundGuard {
  private readonly agents = new Map<OutboundPurpose, Agent>();

  constructor(readonly policy: OutboundPolicy, private readonly resolver: Resolver = systemResolver) {}

  /**
   * The addresses of `hostname` this purpose may connect to, in resolver order; throws
   * OutboundBlockedError when there is none (and the resolver's error when the name does not resolve).
   */
  async addresses(hostname: string, port: number, purpose: OutboundPurpose): Promise<string[]> {
    const host = hostname.replace(/^\[|\]$/g, '');
    const found = net.isIP(host) ? [host] : (await this.resolver(host)).map((a) => a.address);
    const allowed = found.filter((address) => verdict(this.policy, { hostname: host, address, port, purpose }) === null);
    if (!allowed.length) {
      const address = found[0] ?? host;
      throw new OutboundBlockedError(host, address, port, verdict(this.policy, { hostname: host, address, port, purpose }) ?? 'unresolvable');
    }
    return allowed;
  }

  /** Checks a URL before use (scheme, then its addresses), for a quick and clear refusal. */
  async check(url: string | URL, purpose: OutboundPurpose): Promise<void> {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`only http and https URLs are allowed, not ${u.protocol}`);
    await this.addresses(u.hostname, defaultPort(u), purpose);
  }

  /** An undici dispatcher that connects only to allowed addresses (one per purpose, pooled). */
  dispatcher(purpose: OutboundPurpose): Agent {
    let agent = this.agents.get(purpose);
    if (agent) return agent;
    const base = buildConnector({ timeout: CONNECT_TIMEOUT_MS });
    const connect: buildConnector.connector = (opts, callback) => {
      const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
      const attempt = (addrs: string[], i: number) => {
        // `host` stays the name, so TLS still verifies the certificate against it (SNI too).
        base({ ...opts, hostname: addrs[i] }, (err, socket) => {
          if (err) {
            if (i + 1 < addrs.length) return attempt(addrs, i + 1);
            return callback(err, null);
          }
          // Belt and braces: the socket must be connected where we said.
          const remote = socket!.remoteAddress ?? '';
          const why = verdict(this.policy, { hostname: opts.hostname, address: remote, port, purpose });
          if (why !== null) {
            socket!.destroy();
            return callback(new OutboundBlockedError(opts.hostname, remote, port, why), null);
          }
          callback(null, socket!);
        });
      };
      this.addresses(opts.hostname, port, purpose).then((addrs) => attempt(addrs, 0), (err: Error) => callback(err, null));
    };
    agent = new Agent({ connect });
    this.agents.set(purpose, agent);
    return agent;
  }

  /** A fetch (WHATWG signature, as the SDKs take it) whose connections pass the guard. */
  fetch(purpose: OutboundPurpose): typeof globalThis.fetch {
    const dispatcher = this.dispatcher(purpose);
    return ((input: Parameters<typeof undiciFetch>[0], init?: Parameters<typeof undiciFetch>[1]) =>
      undiciFetch(input, { ...init, dispatcher })) as unknown as typeof globalThis.fetch;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => {})));
  }
}

function defaultPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/** The deployment's policy: TROUPE_OUTBOUND_ALLOW, plus loopback model servers when HOST is loopback. */
export function configuredPolicy(): OutboundPolicy {
  return { allow: config.outboundAllow, loopbackModels: isLoopbackHost(config.host) };
}

let shared: OutboundGuard | undefined;
/** The process's guard, built from config on first use. */
export function outbound(): OutboundGuard {
  shared ??= new OutboundGuard(configuredPolicy());
  return shared;
}

/** Finds the guard's refusal in an error's cause chain (undici and the SDKs wrap it). */
export function blockedCause(err: unknown): OutboundBlockedError | null {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof OutboundBlockedError) return e;
  }
  return null;
}
