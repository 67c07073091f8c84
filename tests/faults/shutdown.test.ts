// SIGTERM under load: requests already accepted finish with their normal answers, new connections
// are refused, the pool closes, and the process exits 0 within its grace period.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { dbKind } from '../helpers/db.js';
import { cleanupsAfterAll, logLines, startServer, storageEnv } from './process.js';

const GRACE_MS = 8000;
const cleanups = cleanupsAfterAll();

/** A POST whose headers and first half of the body are sent now, the rest when finish() is called. */
function slowCreate(port: number, auth: string, title: string) {
  const body = JSON.stringify({ title });
  const socket = net.connect({ port, host: '127.0.0.1' });
  let raw = '';
  socket.on('data', (d) => (raw += d.toString()));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  const sent = new Promise<void>((resolve) =>
    socket.once('connect', () => {
      socket.write(
        `POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
        () => resolve(),
      );
    }),
  );
  return {
    sent,
    async finish(): Promise<{ status: number; head: string; body: { id: number; title: string } }> {
      socket.write(body.slice(5));
      // The server answers, then closes the connection because it is shutting down.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
      const [head, payload = ''] = raw.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
      return { status, head: head ?? '', body: JSON.parse(payload) as { id: number; title: string } };
    },
  };
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe(`graceful shutdown (${dbKind})`, () => {
  it('finishes accepted requests, refuses new connections, closes the pool and exits 0 in time', { timeout: 120_000 }, async () => {
    const env = { ...(await storageEnv(cleanups)), SHUTDOWN_GRACE_MS: String(GRACE_MS) };
    const server = await startServer(env);
    const port = Number(new URL(server.base).port);
    const auth = await bearer(newUser());

    // Background load on keep-alive connections, until the server is gone.
    const acked = new Map<number, string>();
    const answered: number[] = [];
    let stop = false;
    const loader = async (w: number) => {
      for (let i = 0; !stop; i++) {
        try {
          const res = await fetch(`${server.base}/api/tasks`, {
            method: 'POST',
            headers: { Authorization: auth, 'Content-Type': 'application/json' },
            body: JSON.stringify({ title: `load ${w}-${i}` }),
          });
          answered.push(res.status);
          if (res.status === 201) {
            const t = (await res.json()) as { id: number; title: string };
            acked.set(t.id, t.title);
          }
        } catch {
          // Refused or closed before a request was taken: expected once the server stops.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const load = [0, 1, 2, 3].map(loader);
    await new Promise((r) => setTimeout(r, 1000));

    // Three requests accepted (headers read, body half sent) when the signal arrives.
    const slow = [0, 1, 2].map((i) => slowCreate(port, auth, `in flight ${i}`));
    await Promise.all(slow.map((s) => s.sent));
    await new Promise((r) => setTimeout(r, 300));
    const signalled = performance.now();
    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));

    expect(await connectionRefused(port), 'a new connection after SIGTERM is refused').toBe(true);
    expect(server.child.exitCode, 'still finishing accepted requests').toBeNull();
    const finished = await Promise.all(slow.map((s) => s.finish()));
    for (const [i, f] of finished.entries()) {
      expect(f.status).toBe(201);
      // Answered after the signal: the connection is not kept for another request.
      expect(f.head).toMatch(/\r\nconnection: close(\r\n|$)/i);
      expect(f.body.title).toBe(`in flight ${i}`);
      acked.set(f.body.id, f.body.title);
    }

    const code = await server.exited;
    const tookMs = performance.now() - signalled;
    stop = true;
    await Promise.all(load);
    expect(code, server.output().slice(-3000)).toBe(0);
    expect(tookMs).toBeLessThan(GRACE_MS);
    // Every answer the load got was a normal one; none was cut into a 5xx.
    expect(answered.filter((s) => s !== 201)).toEqual([]);
    const messages = logLines(server).map((l) => l.msg);
    expect(messages).toContain('shutting down');
    // Logged after the server and the pool have closed. (A request's own log line, written when
    // its connection closes, may still come after it.)
    expect(messages.lastIndexOf('stopped')).toBeGreaterThan(messages.indexOf('shutting down'));
    // Request lines are buffered in production; whatever was still buffered was written at exit.
    const posts = logLines(server).filter((l) => l.msg === 'request completed' && (l.req as { method?: string }).method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(answered.length + finished.length);

    // Every acknowledged create, the in-flight ones included, is stored.
    const again = await startServer(env);
    try {
      const stored = new Map<number, string>();
      for (let url: string | undefined = `${again.base}/api/tasks?limit=500`; url; ) {
        const res: Response = await fetch(url, { headers: { Authorization: auth } });
        for (const t of (await res.json()) as { id: number; title: string }[]) stored.set(t.id, t.title);
        const next = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
        url = next ? new URL(next, again.base).toString() : undefined;
      }
      expect(stored.size).toBeGreaterThanOrEqual(acked.size);
      for (const [id, title] of acked) expect(stored.get(id), `acknowledged task ${id}`).toBe(title);
      console.log(`shutdown test (${dbKind}): exit ${code} after ${Math.round(tookMs)} ms, ${acked.size} acknowledged creates present`);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });

  it('writes a request line soon after the request even when nothing else is logged', { timeout: 60_000 }, async () => {
    const server = await startServer(await storageEnv(cleanups));
    cleanups.push(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    });
    const res = await fetch(`${server.base}/api/tasks`, { headers: { Authorization: await bearer(newUser()) } });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    // Within the buffer's flush interval (100 ms); the wait is generous so a busy machine passes.
    for (let i = 0; i < 100 && !logLines(server).some((l) => (l.req as { id?: string } | undefined)?.id === requestId); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const line = logLines(server).find((l) => (l.req as { id?: string } | undefined)?.id === requestId);
    expect(line, server.output().slice(-2000)).toMatchObject({ msg: 'request completed', res: { statusCode: 200 }, service: 'todo-api' });
    expect(server.child.exitCode).toBeNull();
  });

  it('ends event streams, open or still being set up, and exits 0 well within the grace period', { timeout: 60_000 }, async () => {
    const server = await startServer({ ...(await storageEnv(cleanups)), SHUTDOWN_GRACE_MS: '8000' });
    const auth = await bearer(newUser());
    const open = await fetch(`${server.base}/api/events`, { headers: { Authorization: auth } });
    expect(open.status).toBe(200);
    const openBody = open.text();
    // More, sent just before the signal: some are still being set up when it comes.
    const late = Array.from({ length: 4 }, () =>
      fetch(`${server.base}/api/events`, { headers: { Authorization: auth } }).then(
        (r) => r.text(),
        () => '',
      ),
    );
    await new Promise((r) => setTimeout(r, 2));
    const started = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // The grace period is 8 s; a stream left open would have held the exit until then.
    expect(Date.now() - started, server.output().slice(-2000)).toBeLessThan(4000);
    await Promise.all([openBody, ...late]);
  });
});
