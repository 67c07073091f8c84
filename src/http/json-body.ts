// Request bodies: JSON in UTF-8, for the methods whose operations take one.
import express, { type RequestHandler } from 'express';
import { assertJsonDepth } from './json-depth.js';
import { problems } from './problem.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** A Content-Type with no charset, or charset=utf-8. */
function isUtf8(contentType: string | undefined): boolean {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

// Only POST, PUT and PATCH operations take a body. Content sent with GET or DELETE has no meaning
// (RFC 9110 §9.3.1); it is ignored, not parsed, so it can neither fail nor cost anything.
// JSON between systems is UTF-8 (RFC 8259 §8.1): another charset is refused before parsing, so
// no check on the raw bytes (the nesting limit) can be misled by another encoding.
export function jsonBody(limitBytes: number): RequestHandler {
  const json = express.json({ limit: limitBytes, strict: true, verify: (_req, _res, raw) => assertJsonDepth(raw) });
  return (req, res, next) => {
    if (!BODY_METHODS.has(req.method)) return next();
    if (!isUtf8(req.headers['content-type'])) {
      return next(problems.unsupportedMediaType('Send the body as application/json in UTF-8 (RFC 8259); no other charset is accepted.'));
    }
    json(req, res, next);
  };
}
