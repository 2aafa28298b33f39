/**
 * Bull Board at /admin/queues: the session queue and the webhook queue, for the users in
 * TROUPE_ADMIN_USERS (JWT users only; an agent key or another user gets 403, no token 401).
 *
 * A browser cannot send an Authorization header when it opens a page, so the token may also come
 * once as `?access_token=`: it is then kept in an HttpOnly, SameSite=Strict cookie scoped to
 * /admin/queues, and a GET is redirected to the same URL without the token (so it does not stay
 * in the address bar or the history). Every request is checked again: the cookie holds the token
 * itself, so its expiry and the admin list apply as they do to the header.
 */
import type Koa from 'koa';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import { forbidden } from '../domain/errors.js';
import { sessionQueue } from '../runtime/queue.js';
import { webhookQueue } from '../runtime/webhooks.js';
import { authenticateToken, bearerToken, isAdmin } from './auth.js';

export const ADMIN_QUEUES_PATH = '/admin/queues';
export const ADMIN_COOKIE = 'troupe_admin_token';

let board: { queues: Queue[]; middleware: Koa.Middleware } | undefined;

/** The board over the processes' own queue instances (rebuilt if one was closed and made anew). */
function boardMiddleware(): Koa.Middleware {
  const queues = [sessionQueue(), webhookQueue()];
  if (!board || board.queues.some((q, i) => q !== queues[i])) {
    const serverAdapter = new KoaAdapter().setBasePath(ADMIN_QUEUES_PATH);
    createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })), serverAdapter });
    board = { queues, middleware: serverAdapter.registerPlugin() as unknown as Koa.Middleware };
  }
  return board.middleware;
}

const underBoard = (path: string) => path === ADMIN_QUEUES_PATH || path.startsWith(`${ADMIN_QUEUES_PATH}/`);

export function bullBoard(): Koa.Middleware {
  return async (ctx, next) => {
    if (!underBoard(ctx.path)) return next();
    ctx.state.routePath = ADMIN_QUEUES_PATH;
    const fromQuery = typeof ctx.query.access_token === 'string' ? ctx.query.access_token : null;
    const token = bearerToken(ctx.get('authorization')) ?? fromQuery ?? ctx.cookies.get(ADMIN_COOKIE) ?? null;
    const principal = await authenticateToken(token);
    if (principal.kind !== 'user' || !isAdmin(principal)) throw forbidden('The queue dashboard is for admins (TROUPE_ADMIN_USERS)');
    if (fromQuery && token === fromQuery) {
      ctx.cookies.set(ADMIN_COOKIE, fromQuery, { httpOnly: true, sameSite: 'strict', path: ADMIN_QUEUES_PATH, secure: ctx.secure, overwrite: true });
      if (ctx.method === 'GET') {
        const url = new URL(ctx.originalUrl, 'http://x');
        url.searchParams.delete('access_token');
        ctx.status = 303;
        ctx.redirect(url.pathname + url.search);
        return;
      }
    }
    return boardMiddleware()(ctx, next);
  };
}
