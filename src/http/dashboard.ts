/**
 * The web dashboard (packages/dashboard, built by Vite into its dist/) served at `/` by the api
 * itself: no other server or port. Static files come from koa-static; the app's own page paths
 * (`/` and `/p/...`) get index.html (the single-page app routes in the browser). Everything else,
 * the API's paths above all, is never answered here, so unknown paths keep their JSON 404s.
 * Without a build, a plain page says how to make one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Koa from 'koa';
import serve from 'koa-static';

export const DASHBOARD_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/dashboard/dist');

/** The single-page app's own routes (packages/dashboard/src/main.tsx): a reload or a link lands on the app. */
const APP_PAGE = /^\/(index\.html|p(\/.*)?)?$/;

/** Paths that belong to the API, the streams and the operational routes: never the dashboard's. */
const RESERVED = /^\/(api|openapi\.json|healthz|readyz|metrics|socket\.io|ws|debug|admin|pair-sessions)(\/|$)/;

// The app loads its own scripts and styles, talks only to this origin, and is never framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const MISSING = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Troupe: dashboard not built</title><link rel="icon" href="data:,"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The dashboard is not built</h1>
<p>Troupe's API is running (see <a href="/openapi.json">/openapi.json</a>), but the web dashboard's files are missing from
<code>packages/dashboard/dist</code>.</p>
<p>Build it with <code>npm run build:dashboard</code> (or run <code>bash scripts/setup.sh</code>, which builds it when it is missing),
then reload this page.</p></body></html>`;

function securityHeaders(ctx: Koa.Context) {
  ctx.set('Content-Security-Policy', CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
}

export function dashboard(dir = DASHBOARD_DIST): Koa.Middleware {
  const index = path.join(dir, 'index.html');
  const statics = serve(dir, {
    index: false,
    hidden: false,
    // Vite names built assets by content hash: they never change under one name.
    setHeaders: (res, file) => res.setHeader('Cache-Control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache'),
  });
  return async (ctx, next) => {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || RESERVED.test(ctx.path)) return next();
    if (!APP_PAGE.test(ctx.path)) {
      await statics(ctx, async () => {});
      if (ctx.body == null) return next();
      ctx.state.routePath = 'dashboard';
      ctx.state.quietLog = true;
      securityHeaders(ctx);
      return;
    }
    ctx.state.routePath = 'dashboard';
    ctx.state.quietLog = true;
    securityHeaders(ctx);
    let html: string;
    try {
      html = await fs.promises.readFile(index, 'utf8');
    } catch {
      ctx.status = 503;
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = MISSING;
      return;
    }
    ctx.status = 200;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = html;
  };
}
