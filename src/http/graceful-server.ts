// The HTTP server around the app, with deliberate limits: slow or oversized clients are cut off.
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { Express } from 'express';
import type { Config } from '../config.js';
import { expressBorn } from './express-born.js';

export const MAX_HEADER_BYTES = 16 * 1024;

export interface HttpServer extends Server {
  /**
   * Stops accepting connections and resolves once every accepted request has been answered.
   * Keep-alive connections are closed as soon as they fall idle, and every response sent from now
   * on says `Connection: close`: a client that keeps reusing its connection would otherwise hold
   * server.close() open for as long as it goes on sending.
   */
  closeGracefully(): Promise<void>;
}

export function createHttpServer(app: Express, timeouts: Config['timeouts']): HttpServer {
  const server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES, // headers and URL together; 431 above it
      headersTimeout: timeouts.headersMs, // slow-loris: the whole header block must arrive in time
      requestTimeout: timeouts.requestMs, // and the whole request, body included
      // How often Node enforces the two timeouts above (its default, 30 s, would let them overrun).
      connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
      ...expressBorn(app),
    },
    app,
  ) as HttpServer;
  server.keepAliveTimeout = timeouts.keepAliveMs;

  let closing = false;
  const pending = new Set<ServerResponse>();
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    pending.add(res);
    res.on('close', () => pending.delete(res));
  });

  server.closeGracefully = () =>
    new Promise<void>((resolve) => {
      closing = true;
      for (const res of pending) if (!res.headersSent) res.shouldKeepAlive = false;
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });
  return server;
}
