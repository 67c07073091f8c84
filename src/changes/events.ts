// GET /api/events: the user's changes as Server-Sent Events, and POST /api/events/tickets, the
// single-use tickets a browser's EventSource (which cannot send Authorization) opens it with.
// A stream is a reader of the change feed that is woken up: on connect it replays from its
// Last-Event-ID (a feed cursor), then reads again whenever the hub says the user's tasks changed,
// on a slow safety poll, and shortly after a read that saw changes still being written. It never
// buffers for a slow client: while the socket is backed up it stops reading (its cursor waits),
// and a client that stays backed up is cut off.
import type { RequestHandler, Response } from 'express';
import { Router } from 'express';
import type { ChangesConfig } from '../config.js';
import { problemBody, problems } from '../http/problem.js';
import type { TaskService } from '../tasks/service.js';
import type { LiveChanges } from './live.js';

/** A client whose socket stays backed up this long is cut off (it reconnects and replays). */
const STALLED_MS = 30_000;
/** How much may wait in the socket before the stream stops reading more. */
const HIGH_WATER_BYTES = 256 * 1024;
const PAGE = 200;

export interface EventsDeps {
  service: TaskService;
  live: LiveChanges;
  config: Pick<ChangesConfig, 'heartbeatSeconds' | 'pollSeconds' | 'streamsPerUser' | 'streamsMax'>;
}

// Names under which a client might put its JWT in the URL: refused outright, whatever else the
// request carries, since URLs are logged by proxies and browsers.
const TOKEN_IN_URL = ['access_token', 'token', 'jwt', 'bearer', 'authorization'];

/**
 * Authentication for /api: a bearer token (`bearer`), or for GET /api/events without one, a ticket.
 * A token in the query string is refused everywhere under /api.
 */
export function apiAuthentication(bearer: RequestHandler, service: TaskService): RequestHandler {
  return (req, res, next) => {
    const query = req.query as Record<string, unknown>;
    if (TOKEN_IN_URL.some((name) => Object.hasOwn(query, name))) {
      next(
        problems.unauthorized(
          'token_invalid',
          'A token in the URL is refused: URLs end up in logs. Send it as `Authorization: Bearer <JWT>`, or, for an EventSource, get a ticket from POST /api/events/tickets.',
          'Bearer realm="todo-api", error="invalid_request", error_description="Send the token in the Authorization header."',
        ),
      );
      return;
    }
    const ticket = query.ticket;
    if (req.path !== '/events' || req.method !== 'GET' || typeof ticket !== 'string' || req.headers.authorization) {
      bearer(req, res, next);
      return;
    }
    service.redeemTicket(ticket).then(
      (redeemed) => {
        if (!redeemed) {
          next(
            problems.unauthorized(
              'token_invalid',
              'The ticket is unknown, used already or expired. Get a new one from POST /api/events/tickets for each connection.',
              'Bearer realm="todo-api", error="invalid_token", error_description="The ticket is not valid."',
            ),
          );
          return;
        }
        if (redeemed.tokenValidUntil * 1000 <= Date.now()) {
          // The ticket would outlive the token it was issued for.
          next(
            problems.unauthorized(
              'token_expired',
              'The token this ticket was issued for has expired. Get a new token, then a new ticket.',
              'Bearer realm="todo-api", error="invalid_token", error_description="The token has expired."',
            ),
          );
          return;
        }
        res.locals.userId = redeemed.userId;
        res.locals.tokenValidUntil = redeemed.tokenValidUntil;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

const event = (name: string, id: string | undefined, data: unknown) =>
  `${id === undefined ? '' : `id: ${id}\n`}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

export function eventsRouter({ service, live, config }: EventsDeps): Router {
  const router = Router();

  router.post('/tickets', async (_req, res: Response) => {
    const ticket = await service.issueTicket(res.locals.userId as string, res.locals.tokenValidUntil as number);
    res.status(201).json(ticket);
  });

  router.get('/', async (req, res) => {
    const userId = res.locals.userId as string;
    const validUntil = res.locals.tokenValidUntil as number | undefined;
    if (live.closing) {
      // This instance is shutting down: the head and a retry, so the client reconnects elsewhere.
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
      res.end(`retry: ${1000 + Math.floor(Math.random() * 2000)}\n\n`);
      return;
    }
    if (live.hub.count(userId) >= config.streamsPerUser) {
      throw problems.rateLimited(
        `At most ${config.streamsPerUser} event streams of one user may be open at once; close one (a browser tab, say) first.`,
        10,
      );
    }
    if (live.hub.count() >= config.streamsMax) {
      throw problems.unavailable('server_busy', 'This instance serves as many event streams as it can. Connect again shortly.', 10);
    }

    // A client already gone (before this handler ran, its close event is past): nothing to set up.
    if (req.socket.destroyed) return;
    // The slot, the registry entry and the close handler are taken before anything is awaited:
    // streams opened at once count against the limits, a client gone during setup frees its slot,
    // and a shutdown during setup ends this one too.
    let cursor: string | undefined;
    let ended = false;
    let reading = false;
    let again = false;
    let stalledSince: number | undefined;
    let idSent: string | undefined;
    const timers: NodeJS.Timeout[] = [];
    let soon: NodeJS.Timeout | undefined;
    const unsubscribe = live.hub.subscribe(userId, () => void read());
    const stream = {
      end() {
        if (ended) return;
        ended = true;
        for (const t of timers) clearInterval(t);
        clearTimeout(soon);
        unsubscribe();
        live.streams.delete(stream);
        if (res.headersSent) res.end();
      },
    };
    live.streams.add(stream);
    res.on('close', () => stream.end());

    /** A backed-up client: reading waits; one that stays backed up is cut off. */
    const stalled = () => {
      if (res.writableLength <= HIGH_WATER_BYTES) {
        stalledSince = undefined;
        return false;
      }
      stalledSince ??= Date.now();
      if (Date.now() - stalledSince >= STALLED_MS) req.socket.destroy();
      return true;
    };

    async function read(): Promise<void> {
      if (ended || cursor === undefined) return;
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          if (stalled()) return;
          const page = await service.changes(userId, cursor, PAGE, { live: true, reminders: true });
          if (ended) return;
          if (page.kind === 'cursor_expired') {
            const body = problemBody(problems.cursorExpired(page.retentionSeconds), res.locals.requestId);
            res.write(`id\nevent: cursor_expired\ndata: ${JSON.stringify(body)}\n\n`);
            stream.end();
            return;
          }
          if (page.kind === 'invalid_cursor') {
            stream.end();
            return;
          }
          let out = '';
          for (const c of page.changes) {
            out += c.change.op === 'reminder' ? event('reminder', c.cursor, c.change.reminder) : event('change', c.cursor, c.change);
          }
          if (out) {
            res.write(out);
            idSent = page.changes.at(-1)!.cursor;
          }
          cursor = page.cursor;
          if (page.hasMore) again = true;
          else if (page.pending && !soon) {
            // A transaction still running holds the feed back: look again in a moment.
            soon = setTimeout(() => {
              soon = undefined;
              void read();
            }, 100);
          }
        } while (again && !ended);
      } catch (err) {
        req.log?.warn({ err: { message: (err as Error).message } }, 'event stream read failed; retrying');
        if (!soon && !ended) {
          soon = setTimeout(() => {
            soon = undefined;
            void read();
          }, 1000);
        }
      } finally {
        reading = false;
      }
    }

    let start: string;
    let expiredAfter: number | undefined;
    const lastId = req.get('Last-Event-ID') || (req.query.last_event_id as string | undefined);
    try {
      if (lastId) {
        // Checked before the stream starts: a cursor that is not this user's is the client's error.
        const first = await service.changes(userId, lastId, 1);
        if (first.kind === 'invalid_cursor') {
          throw problems.validation(
            [{ path: req.get('Last-Event-ID') ? '/header/last-event-id' : '/query/last_event_id', message: first.message }],
            'invalid_cursor',
          );
        }
        if (first.kind === 'cursor_expired') expiredAfter = first.retentionSeconds;
        start = lastId;
      } else {
        start = await service.cursorNow(userId);
      }
    } catch (err) {
      stream.end();
      throw err;
    }
    // Gone during setup: nothing to answer.
    if (ended && (req.socket.destroyed || res.writableEnded)) return;

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    // HEAD (answered as GET up to here): the head is the whole answer.
    if (res.locals.head === true) {
      stream.end();
      return;
    }
    // Reconnect after 2 to 4 s, spread so a restart's clients do not all come back at once.
    res.write(`retry: ${2000 + Math.floor(Math.random() * 2000)}\n\n`);
    // Ended during setup (a shutdown): the head and retry only, so the client reconnects elsewhere.
    if (ended) {
      res.end();
      return;
    }
    if (expiredAfter !== undefined) {
      // An empty id: a browser reconnects without Last-Event-ID, from the present.
      const body = problemBody(problems.cursorExpired(expiredAfter), res.locals.requestId);
      res.write(`id\nevent: cursor_expired\ndata: ${JSON.stringify(body)}\n\n`);
      stream.end();
      return;
    }

    res.on('drain', () => void read());
    timers.push(
      // A heartbeat; with it, while nothing changes, the id of where the stream stands now, so a
      // client that reconnects after a quiet while resumes from a fresh position.
      setInterval(() => {
        const fresh = cursor !== undefined && cursor !== idSent && !reading ? cursor : undefined;
        if (fresh) idSent = fresh;
        res.write(fresh ? `: ping\nid: ${fresh}\n\n` : ': ping\n\n');
      }, config.heartbeatSeconds * 1000),
      setInterval(() => void read(), config.pollSeconds * 1000),
      setInterval(stalled, 5000),
    );
    if (validUntil !== undefined) {
      // The stream lasts as long as the token it was opened with.
      const left = Math.max(0, validUntil * 1000 - Date.now());
      timers.push(setTimeout(() => stream.end(), Math.min(left, 2 ** 31 - 1)));
    }
    cursor = start;
    idSent = start;
    res.write(event('ready', start, {}));
    await read();
  });

  return router;
}
