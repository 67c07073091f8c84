// Structured JSON logs (pino). Credentials never reach a log line: the headers that carry them are
// redacted wherever they appear, query values are logged only for the contract's harmless switches
// (loggedUrl), and request bodies are not logged at all.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Express, Request, RequestHandler } from 'express';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from './config.js';

interface RequestLine {
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  responseTime?: number;
  userId?: string;
}

/**
 * Lines for a person at a terminal (pino-pretty, loaded only then): a request reads as
 * `GET /api/tasks 200 3 ms alice`, anything else as its message with its fields after it.
 */
function prettyStream(): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pretty.build({
    sync: true, // lines in order with console.log's banner, and none lost at exit
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    ignore: 'pid,hostname,service,req,res,responseTime,route,userId',
    messageFormat: (log: Record<string, unknown>) => {
      const { req, res, responseTime, userId } = log as RequestLine;
      if (!req?.method || !res) return String(log.msg ?? '');
      return `${req.method} ${req.url} ${res.statusCode} ${responseTime} ms${userId ? ` ${userId}` : ''}`;
    },
  });
}

/** Fields on every line, in place of pino's pid and hostname. */
const BASE = { service: 'todo-api' };

/** How long a buffered line may wait for company before it is written anyway. */
export const LOG_FLUSH_MS = 100;

/**
 * JSON lines to stdout, gathered into writes of about 4 KB rather than one write per line: under
 * load, a write per request line cost 5 % of a get's CPU (docs/performance.md, "Hand-made speed-ups"). A line
 * waits at most LOG_FLUSH_MS; what is buffered is written out when the process exits, even on an
 * uncaught error (pino's exit handler). Only a SIGKILL loses the last tenth of a second of lines.
 */
function bufferedStdout(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const write = destination.write.bind(destination);
  let pending = false;
  destination.write = (line: string) => {
    pending = true;
    return write(line);
  };
  setInterval(() => {
    if (!pending) return;
    pending = false;
    destination.flush();
  }, LOG_FLUSH_MS).unref();
  return destination;
}

export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    base: BASE,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["proxy-authorization"]',
        'res.headers["set-cookie"]',
        '*.authorization',
        '*.token',
        '*.secret',
        '*.password',
      ],
      censor: '[redacted]',
    },
  };
  return format === 'pretty' ? pino(options, prettyStream()) : pino(options);
}

/**
 * Where the one line per request goes in production (JSON lines): a logger of its own on a
 * buffered stdout, without redaction (see useRequestLogging). Every other line stays unbuffered,
 * so start-up, warnings and errors appear at once. Elsewhere undefined: the app's own logger.
 */
export function createRequestLogger(logger: Logger, format: LogFormat, production: boolean): Logger | undefined {
  if (!production || format === 'pretty') return undefined;
  return pino({ level: logger.level, base: BASE }, bufferedStdout());
}

/** Names a router's mount point as a template, for logs and metrics (never a real user id). */
export function mountedAt(template: string): RequestHandler {
  return (_req, res, next) => {
    res.locals.mount = template;
    next();
  };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// Query parameters whose values a log may show: the contract's switches, which say nothing about a
// person. Search text, tags and cursors (which carry a task's sort key, a title say) are personal;
// anything else, such as a credential sent as `?access_token=`, is not the contract's at all.
const LOGGED_VALUES = new Set(['status', 'sort', 'order', 'limit', 'priority', 'overdue', 'tz', 'match']);
// A stream's ticket opens it (once) and its last event id is a cursor: named, never shown.
const KNOWN_NAMES = new Set([...LOGGED_VALUES, 'q', 'tag', 'cursor', 'due_before', 'due_after', 'ticket', 'last_event_id']);

/** The URL as logged: the path, then each parameter's name and value only where they are safe. */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (!KNOWN_NAMES.has(name)) return '[unknown]=[redacted]';
      return LOGGED_VALUES.has(name) ? pair : `${name}=[redacted]`;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/**
 * One log line per request, written when the response is done: request id, method, URL, route
 * template, user id, status and latency. The request id is a caller's sane X-Request-Id (so traces
 * join up across services) or a new UUID, echoed in the response. `req.log` is a child logger
 * carrying the id, made only when something logs through it: most requests never need one.
 */
export function requestLogging(app: Express, logger: Logger, requestLines?: Logger): RequestHandler {
  const children = new WeakMap<Request, Logger>();
  // Request lines are built below from known fields only, none of them a credential, so they skip
  // the redaction pass that every other line gets (it costs more than writing the line).
  const lines = requestLines ?? logger.child({}, { redact: [] });
  // On this app's request prototype, so the getter is defined once, not per request.
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request): Logger {
      let child = children.get(this);
      if (!child) {
        child = logger.child({ req: { id: this.id } });
        children.set(this, child);
      }
      return child;
    },
  });
  return (req, res, next) => {
    const started = performance.now();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    res.locals.requestId = id;
    res.once('close', () => {
      const route = (req as { route?: { path?: string } }).route?.path;
      const line = {
        req: { id, method: req.method, url: loggedUrl(req.originalUrl) },
        res: { statusCode: res.statusCode },
        responseTime: Math.round(performance.now() - started),
        ...(route ? { route: `${res.locals.mount ?? ''}${route}` } : {}),
        ...(res.locals.userId ? { userId: res.locals.userId } : {}),
      };
      // An event stream ends when its client goes: that is how it ends, not an abort.
      const streamed = String(res.getHeader('Content-Type') ?? '').startsWith('text/event-stream');
      if (!res.writableFinished && !streamed) lines.warn(line, 'request aborted');
      else if (res.statusCode >= 500) lines.error(line, 'request completed');
      else lines.info(line, 'request completed');
    });
    next();
  };
}
