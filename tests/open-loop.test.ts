// The benchmark's open-loop generator (bench/open-loop.ts) reads responses itself, off raw sockets:
// every way node:http frames a response must reach it whole, and every request it plans must be
// counted once, answered or failed. Counts only, never times: it runs beside a CPU hog too.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLoop, type PlannedRequest } from '../bench/open-loop.js';

const BIG = 'x'.repeat(100_000); // larger than one socket read

let server: Server;
let url: string;
let connections = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      switch (req.url) {
        case '/length': // res.end(data) alone: Content-Length
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ echo: body, method: req.method }));
          return;
        case '/chunked': // writeHead first, then the body: chunked
          res.writeHead(201, { 'content-type': 'application/json' });
          res.write('{"part":1,');
          res.end(`"big":"${BIG}"}`);
          return;
        case '/empty':
          res.writeHead(204).end();
          return;
        case '/close':
          res.writeHead(200, { connection: 'close' }).end('bye');
          return;
        case '/missing':
          res.writeHead(404).end('no');
          return;
        default: // /hang: never answered
          return;
      }
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const USERS = 6;

/** For 1 s, `intervalMs` apart: every user falls due exactly 1000 / intervalMs times, however late its timer runs. */
function run(paths: string[], intervalMs: number, timeoutMs?: number) {
  const sent = Array.from({ length: USERS }, () => 0);
  const seen: { user: number; status: number; body: string }[] = [];
  const result = openLoop({
    url,
    users: USERS,
    intervalMs,
    durationSec: 1,
    ...(timeoutMs ? { timeoutMs } : {}),
    plan: (user): PlannedRequest => {
      const path = paths[sent[user]!++ % paths.length]!;
      return path === '/length'
        ? { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: '{"title":"é"}' }
        : { method: 'GET', path, headers: {} };
    },
    onResponse: (user, status, body) => seen.push({ user, status, body }),
  });
  return { result, seen, sent };
}

describe('open-loop generator', () => {
  it('reads responses framed by Content-Length, by chunks, without a body, and closing the connection', async () => {
    connections = 0;
    const { result, seen, sent } = run(['/length', '/chunked', '/empty', '/close', '/missing'], 100);
    const r = await result;
    expect(sent).toEqual(Array.from({ length: USERS }, () => 10));
    expect(r.errors).toBe(0);
    expect(r.requests).toBe(USERS * 10);
    expect(seen).toHaveLength(USERS * 10);
    const byStatus = (s: number) => seen.filter((x) => x.status === s);
    expect(byStatus(200).filter((x) => x.body.startsWith('{'))).toHaveLength(USERS * 2);
    for (const x of byStatus(200).filter((x) => x.body.startsWith('{'))) {
      expect(JSON.parse(x.body)).toEqual({ echo: '{"title":"é"}', method: 'POST' });
    }
    expect(byStatus(201)).toHaveLength(USERS * 2);
    for (const x of byStatus(201)) expect(JSON.parse(x.body)).toEqual({ part: 1, big: BIG });
    expect(byStatus(204).map((x) => x.body)).toEqual(Array.from({ length: USERS * 2 }, () => ''));
    expect(byStatus(200).filter((x) => x.body === 'bye')).toHaveLength(USERS * 2);
    expect(r.non2xx).toBe(USERS * 2);
    // One connection per user, and a new one after each Connection: close.
    expect(connections).toBe(USERS + USERS * 2);
  });

  it('counts a request that times out as an error, and the user goes on on a new connection', async () => {
    // A timeout long enough for an answered request on a loaded machine.
    const { result, seen } = run(['/hang', '/length'], 500, 1000);
    const r = await result;
    expect(r.errors).toBe(USERS);
    expect(r.requests).toBe(USERS);
    expect(seen.map((x) => x.status)).toEqual(Array.from({ length: USERS }, () => 200));
  });
});
