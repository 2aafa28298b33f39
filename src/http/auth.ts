/**
 * Who is calling. `Authorization: Bearer <token>` is either a user JWT (HS256, `sub` = user id)
 * or an agent API key (`trp_...`, looked up by hash). Membership of the project in question is
 * checked by services/access.ts, not here.
 */
import { jwtVerify, SignJWT } from 'jose';
import { config } from '../config.js';
import * as apiKeys from '../db/repositories/agent-api-keys.js';
import { hashApiKey } from '../lib/secrets.js';
import { unauthorized } from './errors.js';

import type { Principal } from '../domain/principal.js';

export type { Principal };

const secret = () => new TextEncoder().encode(config.jwtSecret);

export async function signUserToken(userId: string, expiresIn = '30d'): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime(expiresIn).sign(secret());
}

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

export async function authenticateToken(token: string | null): Promise<Principal> {
  if (!token) throw unauthorized();
  if (token.startsWith('trp_')) {
    const row = await apiKeys.holderOfHash(hashApiKey(token));
    if (!row) throw unauthorized('Invalid or revoked API key');
    // Best effort bookkeeping; never blocks the request.
    void apiKeys.touchLastUsed(row.id).catch(() => {});
    return { kind: 'agent', agentId: row.agent_id, projectId: row.project_id, memberId: row.member_id, keyId: row.id };
  }
  try {
    // A token without an expiry would be valid for ever: `exp` is required.
    const { payload } = await jwtVerify(token, secret(), { algorithms: ['HS256'], requiredClaims: ['exp'] });
    if (!payload.sub || typeof payload.sub !== 'string') throw new Error('no sub');
    return { kind: 'user', userId: payload.sub };
  } catch {
    throw unauthorized('Invalid or expired token: get a user token with "npm run token -- --user <name>"');
  }
}

export function isAdmin(p: Principal): boolean {
  return p.kind === 'user' && config.adminUsers.includes(p.userId);
}
