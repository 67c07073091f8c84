// A webhook receiver on loopback, as a user's server would be: it records every request it gets
// (raw body and headers) and answers as the test tells it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** How to answer the next request (status, headers); default 204. */
  answer: (
    r: Received,
  ) => { status: number; headers?: Record<string, string> } | Promise<{ status: number; headers?: Record<string, string> }>;
  /** Resolves once `n` requests have arrived (or rejects after `ms`). */
  until(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const waiters: { n: number; resolve: () => void }[] = [];
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    answer: () => ({ status: 204 }),
    until(n, ms = 30_000) {
      if (receiver.received.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver: ${receiver.received.length} of ${n} requests after ${ms} ms`)), ms);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const r: Received = { headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      receiver.received.push(r);
      const { status, headers } = await receiver.answer(r);
      res.writeHead(status, headers).end();
      for (const w of [...waiters]) {
        if (receiver.received.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks`;
  return receiver;
}

export interface WebhookEvent {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/** The delivery's payload, verified with the official library (throws when the signature is not the secret's). */
export function verified(secret: string, r: Received): WebhookEvent {
  return new Webhook(secret).verify(r.body, r.headers) as WebhookEvent;
}
