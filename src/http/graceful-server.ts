// The HTTP server around the app, with deliberate limits: slow or oversized clients are cut off.
import { createServer, type Server, type ServerResponse } from 'node:http';
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

const CLOSING = Symbol('closing');
type Closable = { [CLOSING]?: true };
const patched = new WeakSet<object>();

/**
 * Once its server is closing, every response whose head has not gone out yet says
 * `Connection: close`: checked as the head is written (every response's head goes through
 * writeHead), on the app's response prototype. A per-request 'request' listener and 'close'
 * handler did the same by tracking responses and cost 10 % of a get's CPU (docs/performance.md, "Hand-made
 * speed-ups").
 */
function sayCloseWhenClosing(app: Express): void {
  const proto = app.response as ServerResponse;
  if (patched.has(proto)) return;
  patched.add(proto);
  const writeHead = proto.writeHead as (this: ServerResponse, status: number, reason?: unknown, headers?: unknown) => ServerResponse;
  // Node's writeHead(statusCode, reason?, headers?) reads absent and undefined arguments alike.
  proto.writeHead = function (this: ServerResponse, status: number, reason?: unknown, headers?: unknown) {
    if ((this.socket as { server?: Closable } | null)?.server?.[CLOSING]) this.shouldKeepAlive = false;
    return writeHead.call(this, status, reason, headers);
  } as ServerResponse['writeHead'];
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

  sayCloseWhenClosing(app);
  server.closeGracefully = () =>
    new Promise<void>((resolve) => {
      (server as Server & Closable)[CLOSING] = true;
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });
  return server;
}
