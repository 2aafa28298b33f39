/**
 * POST /api/v1/dev/login — the dashboard's "dev sign-in": mints a user token for a name, so a
 * developer on this machine needs no `npm run token`. Off unless TROUPE_DEV_LOGIN=1 (then a 404,
 * as if the route did not exist); config.ts refuses to start with it on beyond loopback, and the
 * route itself answers only clients on loopback that came through no proxy.
 */
import net from 'node:net';
import { config } from '../../config.js';
import { signUserToken } from '../auth.js';
import { HttpError } from '../errors.js';
import { defineRoute } from '../registry.js';
import { obj } from '../schema.js';

const isLoopbackAddress = (addr: string | undefined) => {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
};

export const devLoginBody = obj({
  user: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$', description: 'the user name (the token\'s sub)' },
}, ['user']);

defineRoute({
  method: 'post', path: '/api/v1/dev/login', tag: 'Dashboard', auth: 'none', body: devLoginBody,
  summary: 'Dev sign-in (only with TROUPE_DEV_LOGIN=1, on loopback): a user token for the given name, valid 12 hours',
  handler: async (ctx, { body }) => {
    if (!config.devLogin) throw new HttpError(404, `No route for ${ctx.method} ${ctx.path}; dev sign-in is off (TROUPE_DEV_LOGIN=1 turns it on)`);
    const forwarded = Boolean(ctx.get('x-forwarded-for') || ctx.get('forwarded'));
    if (forwarded || !isLoopbackAddress(ctx.req.socket.remoteAddress)) throw new HttpError(403, 'Dev sign-in answers clients on this machine only');
    return { token: await signUserToken(body.user, '12h'), user: body.user, expires_in: 12 * 3600 };
  },
});
