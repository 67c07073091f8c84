// GET /docs: the built API reference (scripts/build-docs.mjs), 2.6 MB of HTML, sent precompressed
// (brotli or gzip, as the client accepts) with a strong ETag, so a client that asks again gets a
// 304 and one that asks in a loop costs the server a file it already has in memory, not CPU.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import { problems } from '../http/problem.js';
import { noneMatchHits } from '../http/etag.js';

// The page is Redoc, inlined: it needs inline script and style, and nothing from elsewhere.
const CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

export function docsHandler(docsFile: string | undefined): RequestHandler {
  const html = docsFile ? readIfPresent(docsFile) : undefined;
  if (!html) {
    return () => {
      throw problems.notFound('The API reference has not been built on this server; run `npm run docs`.');
    };
  }
  const variants = { br: readIfPresent(`${docsFile}.br`), gzip: readIfPresent(`${docsFile}.gz`) };
  const tag = createHash('sha256').update(html).digest('base64url').slice(0, 27);
  const etag = `"${tag}"`;
  return (req, res) => {
    res.set({
      'Content-Security-Policy': CSP,
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
      ETag: etag,
      Vary: 'Accept-Encoding',
    });
    if (noneMatchHits(req.get('If-None-Match'), tag)) {
      res.status(304).end();
      return;
    }
    // The smaller one whenever the client takes it, whatever order it listed them in.
    const encoding = (['br', 'gzip'] as const).find((e) => variants[e] && req.acceptsEncodings(e) === e);
    if (encoding) {
      res.set('Content-Encoding', encoding).send(variants[encoding]);
    } else {
      res.send(html);
    }
  };
}
