// Tool calls reach the REST app as real HTTP requests to a private listener of its own on
// loopback, so every rule of the REST operation applies unchanged (Express's request and response
// objects are its own; an in-process fake of them is not). Each call carries a one-time nonce that
// stands for the caller already verified at /mcp: the listener takes the user and the client
// address from it, and answers 404 to anything that does not carry one.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { VERIFIED_USER } from '../auth/authenticate.js';
import { expressBorn } from '../http/express-born.js';

export interface Caller {
  userId: string;
  /** The /mcp request's client address and id, so limits and logs see the real caller. */
  ip: string;
  requestId: string;
}

export interface RestRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

export interface RestResponse {
  status: number;
  headers: Headers;
  text: string;
}

export type Dispatch = (request: RestRequest, caller: Caller) => Promise<RestResponse>;

const NONCE_HEADER = 'x-todo-api-dispatch';

export function selfDispatch(app: Express): Dispatch {
  const callers = new Map<string, Caller>();
  let origin: Promise<string> | undefined;
  const listen = () =>
    new Promise<string>((resolve, reject) => {
      // Only this process connects, but any local process could: a slow client is cut off as
      // promptly as on the public port (enforced every second), and a tool call's request is
      // small and quick.
      const limits = { headersTimeout: 5_000, requestTimeout: 10_000, connectionsCheckingInterval: 1_000 };
      const server = createServer({ ...expressBorn(app), ...limits }, (req, res) => {
        const nonce = req.headers[NONCE_HEADER];
        const caller = typeof nonce === 'string' ? callers.get(nonce) : undefined;
        if (!caller) {
          res.writeHead(404).end();
          return;
        }
        callers.delete(nonce as string);
        (req as IncomingMessage & { [VERIFIED_USER]?: string })[VERIFIED_USER] = caller.userId;
        Object.defineProperty(req, 'ip', { value: caller.ip });
        app(req, res);
      });
      server.keepAliveTimeout = 5_000;
      server.once('error', reject);
      // exclusive: in a cluster worker a plain listen(0) would share one port among the workers,
      // and a nonce minted here could reach another worker, which never heard of it.
      server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        server.unref(); // it never keeps the process alive
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      });
    });
  return async ({ method, url, headers, body }, caller) => {
    if (!origin) {
      origin = listen();
      // Where the listener is, for the test that checks its timeouts.
      app.locals.selfDispatchOrigin = origin;
    }
    const nonce = randomBytes(16).toString('base64url');
    callers.set(nonce, caller);
    try {
      const res = await fetch(`${await origin}${url}`, {
        method,
        headers: {
          ...headers,
          [NONCE_HEADER]: nonce,
          'x-request-id': caller.requestId,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, headers: res.headers, text: await res.text() };
    } finally {
      callers.delete(nonce);
    }
  };
}
