/**
 * Secrets at rest (model keys, MCP env values, webhook secrets) are sealed with AES-256-GCM under
 * TROUPE_SECRET_KEY. The stored form is `v1:<iv>:<tag>:<ciphertext>` in base64, so a key rotation
 * can add a v2 later without guessing.
 */
import crypto from 'node:crypto';
import { config } from '../config.js';

export function seal(plain: string, key: Buffer = config.secretKey): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), data.toString('base64')].join(':');
}

export function unseal(sealed: string, key: Buffer = config.secretKey): string {
  const [version, iv, tag, data] = sealed.split(':');
  if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('unrecognised sealed secret format');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
}

export function sealJson(value: unknown): string {
  return seal(JSON.stringify(value));
}

export function unsealJson<T>(sealed: string | null | undefined, fallback: T): T {
  if (!sealed) return fallback;
  return JSON.parse(unseal(sealed)) as T;
}

/** API keys are high-entropy random strings, so a fast hash is enough (no password hashing). */
export function hashApiKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): string {
  return `trp_${crypto.randomBytes(24).toString('base64url')}`;
}
