// A JSON response in one step: status, the two entity headers and the body handed to Node at once,
// so it leaves in a single write with the head. Express's res.json does the same in several (it
// parses the Content-Type it is about to set for a charset, converts the text to a Buffer, checks
// freshness, which the task routes decide themselves from their ETags) and costs measurably more
// per response. Headers set before (ETag, Location, Link, limits, CORS) go out as they are.
// With response validation on (VALIDATE_RESPONSES, createApp's 'validate responses' setting) the
// response goes through res.json instead, where express-openapi-validator checks JSON responses.
import type { Response } from 'express';
import type { Serializer } from './serializer.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** The app setting that says responses are validated (set by createApp from the configuration). */
export const VALIDATE_RESPONSES = 'validate responses';

export function sendJson<T>(res: Response<T>, status: number, body: T, serialize: Serializer<T> = JSON.stringify): void {
  if (res.app.enabled(VALIDATE_RESPONSES)) {
    res.status(status).json(body);
    return;
  }
  const text = serialize(body);
  res.statusCode = status;
  res.setHeader('Content-Type', JSON_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
