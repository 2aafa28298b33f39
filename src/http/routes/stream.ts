/** GET /api/v1/sessions/:sid/stream — the per-session SSE stream (see realtime/sse.ts). */
import { SseWriter } from '../../realtime/sse-writer.js';
import { defineRoute } from '../registry.js';
import { requireVisibleSession } from '../../services/session-access.js';
import { obj } from '../schema.js';
import { badRequest } from '../errors.js';
import { projectIdsOf } from '../../services/access.js';
import { streamSession } from '../../realtime/sse.js';
import { cachedCheck, reauthenticate, watchAccess } from '../../realtime/recheck.js';
import { maySeeSession } from '../../services/session-access.js';
import { bearerToken } from '../auth.js';
import { log } from '../../log.js';
import { lastStatusEvent, TERMINAL } from '../../db/session-store.js';

export const streamQuery = obj({
  last_event_id: { type: 'integer', minimum: -1, maximum: 2_000_000_000, description: 'Same as the Last-Event-ID header, for clients that cannot set it' },
  access_token: { type: 'string', maxLength: 4000, description: 'The bearer token, for clients that cannot set headers' },
});

defineRoute({
  method: 'get', path: '/api/v1/sessions/:sid/stream', tag: 'Sessions (002)', stream: true, tokenFromQuery: true,
  summary: 'Server-sent events of one session: durable events (with id = event_index) and live deltas; resumable with Last-Event-ID (204 once a finished session has nothing left to send)',
  query: streamQuery,
  handler: async (ctx, { principal, params, query }) => {
    const s = await requireVisibleSession(principal, await projectIdsOf(principal), params.sid);
    const header = ctx.get('last-event-id');
    if (header && (!/^-?\d{1,10}$/.test(header) || Math.abs(Number(header)) > 2_000_000_000)) throw badRequest('Last-Event-ID must be an event_index (an integer)');
    const after = header ? Number(header) : (query.last_event_id ?? -1);
    // A client that already has the whole log of a finished session (an EventSource reconnecting
    // after the stream ended, as it always does): 204 is what tells it to stop reconnecting.
    if (TERMINAL.includes(s.status)) {
      const last = await lastStatusEvent(s.id);
      if (last && after >= last.event_index) {
        ctx.status = 204;
        return undefined;
      }
    }
    ctx.state.quietLog = true;
    // From here on the raw response is ours; Koa must not touch it (and never compresses it).
    ctx.respond = false;
    const sse = new SseWriter(ctx.res);
    // A revoked key, a removed member, a chat no longer visible: the stream ends within a period.
    const token = bearerToken(ctx.get('authorization')) ?? query.access_token ?? null;
    sse.onClose(watchAccess(() => cachedCheck(token, `session:${s.id}`, async () => {
      const now = await reauthenticate(token);
      return Boolean(now && (await maySeeSession(now, s)));
    }), () => sse.end()));
    try {
      await streamSession(sse, s.id, after);
    } catch (err) {
      // Redis or Postgres away while the stream was being set up: end it, so the client reconnects
      // with Last-Event-ID, rather than leave it open with nothing coming.
      log.warn({ err, session: s.id }, 'SSE stream setup failed; ending it');
      sse.end();
    }
    return undefined;
  },
});
