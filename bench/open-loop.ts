// Open-loop load for scenario A ("1000 users, each once a second"): every user has its own
// keep-alive connection and sends at a fixed interval from a random phase, so requests arrive
// spread out over each second, as independent users' do. Latency is measured from the moment a
// request was due, not from when it could be sent, so a slow server cannot hide its queue
// (no coordinated omission).
//
// Why not autocannon's rate mode: its per-connection rate timers all start together, so the 1000
// connections fire in one burst at the top of every second; and it corrects for coordinated
// omission with an expected interval of ceil(1 / rate) = 1 ms instead of 1000 ms, adding a
// synthetic sample for every millisecond a response took. Both inflate the percentiles of every
// server measured, the bare baseline included (compare bench/results/ before and after).
//
// Why raw sockets rather than node:http's client: the generator shares the two cores with the
// server and PostgreSQL, and its own CPU and collections show up in every server's tail. With
// node:http (an agent per user, a timer per user) it cost some 40 % of the app's CPU per request;
// one timer, a request written as one string and a response read by its Content-Length or chunks
// cost half that (docs/performance.md).
import net from 'node:net';

export interface PlannedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | undefined;
}

export interface OpenLoopOptions {
  url: string;
  users: number;
  /** Each user's interval between requests. */
  intervalMs: number;
  durationSec: number;
  /** The next request of a user. */
  plan(user: number): PlannedRequest;
  onResponse?(user: number, status: number, body: string): void;
  /** How long a request may take before it counts as an error. */
  timeoutMs?: number;
}

/** What a load run reports, from this generator or autocannon (bench/run.ts). */
export interface LoadResult {
  requests: number;
  seconds: number;
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)]! * 100) / 100;
}

interface ParsedResponse {
  status: number;
  body: string;
  /** The server said Connection: close. */
  close: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * The HTTP/1.1 response in `buf` (one request at a time: nothing follows it), or undefined while
 * it is incomplete. Bodies come with a Content-Length or chunked (node:http chunks a body sent
 * after an explicit writeHead); 204 and 304 have none.
 */
function parseResponse(buf: Buffer): ParsedResponse | undefined {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const head = buf.toString('latin1', 0, headEnd).toLowerCase();
  const status = Number(head.slice(9, 12));
  const close = /\r\nconnection: *close/.test(head);
  let pos = headEnd + 4;
  if (status === 204 || status === 304) return { status, body: '', close };
  const contentLength = /\r\ncontent-length: *(\d+)/.exec(head);
  if (contentLength) {
    const end = pos + Number(contentLength[1]);
    return end > buf.length ? undefined : { status, body: buf.toString('utf8', pos, end), close };
  }
  if (!/\r\ntransfer-encoding: *chunked/.test(head)) throw new Error(`response ${status} has neither Content-Length nor chunks`);
  const chunks: Buffer[] = [];
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(buf.toString('latin1', pos, lineEnd), 16);
    const dataEnd = lineEnd + 2 + size;
    if (dataEnd + 2 > buf.length) return undefined;
    if (size === 0) return { status, body: Buffer.concat(chunks).toString('utf8'), close };
    chunks.push(buf.subarray(lineEnd + 2, dataEnd));
    pos = dataEnd + 2;
  }
}

interface Pending {
  text: string;
  due: number;
}

/** One user's keep-alive connection, one request at a time; requests due meanwhile wait their turn. */
class Connection {
  private socket: net.Socket | undefined;
  private buffered: Buffer | undefined;
  private waiting: Pending[] = [];
  /** The request on the wire: when it was due and when it was written. */
  current: { due: number; sentAt: number } | undefined;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly done: (status: number | undefined, body: string, due: number) => void,
  ) {}

  send(text: string, due: number): void {
    if (this.current) this.waiting.push({ text, due });
    else this.write(text, due);
  }

  private write(text: string, due: number): void {
    this.current = { due, sentAt: performance.now() };
    if (!this.socket) this.connect();
    this.socket!.write(text);
  }

  private connect(): void {
    const socket = net.connect(this.target);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket === socket) this.fail();
    });
    this.socket = socket;
  }

  private received(chunk: Buffer): void {
    this.buffered = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    let res: ParsedResponse | undefined;
    try {
      res = parseResponse(this.buffered);
    } catch {
      this.fail();
      return;
    }
    if (!res || !this.current) return;
    this.buffered = undefined;
    const { due } = this.current;
    this.current = undefined;
    if (res.close) this.drop();
    this.done(res.status, res.body, due);
    this.next();
  }

  /** The request on the wire failed (timeout, reset, unparsable): counted as an error, the connection made anew. */
  fail(): void {
    this.drop();
    if (!this.current) return;
    const { due } = this.current;
    this.current = undefined;
    this.done(undefined, '', due);
    this.next();
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.buffered = undefined;
    socket?.destroy();
  }

  private next(): void {
    const queued = this.waiting.shift();
    if (queued) this.write(queued.text, queued.due);
  }

  get busy(): boolean {
    return this.current !== undefined || this.waiting.length > 0;
  }

  close(): void {
    this.drop();
  }
}

function requestText(host: string, r: PlannedRequest): string {
  let text = `${r.method} ${r.path} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [name, value] of Object.entries(r.headers)) text += `${name}: ${value}\r\n`;
  if (r.body !== undefined) text += `Content-Length: ${Buffer.byteLength(r.body)}\r\n`;
  return `${text}\r\n${r.body ?? ''}`;
}

export async function openLoop(opts: OpenLoopOptions): Promise<LoadResult> {
  const target = new URL(opts.url);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const latencies: number[] = [];
  const trace: [number, number][] = [];
  let non2xx = 0;
  let errors = 0;
  const start = performance.now() + 1000; // a second to set up before the first request is due
  const end = start + opts.durationSec * 1000;

  const connections = Array.from(
    { length: opts.users },
    (_, user) =>
      new Connection({ host: target.hostname, port: Number(target.port) }, (status, body, due) => {
        if (status === undefined) {
          errors++;
          return;
        }
        const ms = performance.now() - due;
        latencies.push(ms);
        if (process.env.OPEN_LOOP_TRACE) trace.push([Math.floor((due - start) / 1000), ms]);
        if (status < 200 || status >= 300) non2xx++;
        opts.onResponse?.(user, status, body);
      }),
  );

  // Every user has the same interval, so the order in which they fall due never changes: users
  // sorted by phase, walked round after round by one timer, instead of a timer per user.
  const phases = Array.from({ length: opts.users }, (_, user) => ({ user, phase: Math.random() * opts.intervalMs })).sort(
    (a, b) => a.phase - b.phase,
  );
  let round = 0;
  let i = 0;
  const dueOf = () => start + round * opts.intervalMs + phases[i]!.phase;
  // Requests past their time out are failed by one sweep, not a timer each.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of connections) if (c.current && now - c.current.sentAt > timeoutMs) c.fail();
  }, 50);
  await new Promise<void>((resolve) => {
    const fire = () => {
      const now = performance.now();
      for (let due = dueOf(); due <= now; due = dueOf()) {
        if (due >= end) return resolve();
        const { user } = phases[i]!;
        connections[user]!.send(requestText(target.host, opts.plan(user)), due);
        if (++i === phases.length) {
          i = 0;
          round++;
        }
      }
      setTimeout(fire, dueOf() - now);
    };
    setTimeout(fire, dueOf() - performance.now());
  });
  // Until every request sent has been answered, failed or timed out.
  while (connections.some((c) => c.busy)) await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(sweep);
  for (const c of connections) c.close();
  latencies.sort((a, b) => a - b);
  if (process.env.OPEN_LOOP_TRACE) {
    const bySecond = new Map<number, number[]>();
    for (const [sec, ms] of trace) bySecond.set(sec, [...(bySecond.get(sec) ?? []), ms]);
    for (const [sec, ms] of [...bySecond].sort((a, b) => a[0] - b[0])) {
      ms.sort((a, b) => a - b);
      console.log(`second ${sec}: n=${ms.length} p50=${percentile(ms, 50)} p99=${percentile(ms, 99)} max=${percentile(ms, 100)}`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    requests: latencies.length,
    seconds: Math.round(seconds * 100) / 100,
    rate: Math.round(latencies.length / opts.durationSec),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    non2xx,
    errors,
  };
}
