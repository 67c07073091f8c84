// The HTTP server around the app, with deliberate limits: slow or oversized clients are cut off.
import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config.js';

export const MAX_HEADER_BYTES = 16 * 1024;

export function createHttpServer(app: Express, timeouts: Config['timeouts']): Server {
  const server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES, // headers and URL together; 431 above it
      headersTimeout: timeouts.headersMs, // slow-loris: the whole header block must arrive in time
      requestTimeout: timeouts.requestMs, // and the whole request, body included
      // How often Node enforces the two timeouts above (its default, 30 s, would let them overrun).
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
    },
    app,
  );
  server.keepAliveTimeout = timeouts.keepAliveMs;
  return server;
}
