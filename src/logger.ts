// Structured JSON logs (pino). Credentials never reach a log line: the headers that carry them are
// redacted wherever they appear, and request bodies are not logged at all.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'todo-api' },
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
  });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestLogger(logger: Logger) {
  return pinoHttp({
    logger,
    // Keep a caller's X-Request-Id when it is sane (so traces join up across services); else make one.
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customProps(req: IncomingMessage, res: ServerResponse) {
      const r = req as IncomingMessage & { route?: { path?: string } };
      const locals = (res as ServerResponse & { locals?: { userId?: string; mount?: string } }).locals;
      return {
        ...(r.route?.path ? { route: `${locals?.mount ?? ''}${r.route.path}` } : {}),
        ...(locals?.userId ? { userId: locals.userId } : {}),
      };
    },
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel(_req, res, err) {
      if (err || res.statusCode >= 500) return 'error';
      return 'info';
    },
  });
}
