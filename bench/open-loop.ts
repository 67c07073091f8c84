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
import http from 'node:http';

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

export async function openLoop(opts: OpenLoopOptions): Promise<LoadResult> {
  const target = new URL(opts.url);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const latencies: number[] = [];
  const trace: [number, number][] = [];
  let non2xx = 0;
  let errors = 0;
  let inFlight = 0;
  const agents = Array.from({ length: opts.users }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const start = performance.now() + 1000; // a second to set up every user's first timer
  const end = start + opts.durationSec * 1000;
  let drained: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (drained = resolve));
  let scheduling = opts.users;

  const send = (user: number, due: number) => {
    const r = opts.plan(user);
    inFlight++;
    const finish = (status: number | undefined, body: string) => {
      inFlight--;
      if (status === undefined) errors++;
      else {
        latencies.push(performance.now() - due);
        if (process.env.OPEN_LOOP_TRACE) trace.push([Math.floor((due - start) / 1000), performance.now() - due]);
        if (status < 200 || status >= 300) non2xx++;
        opts.onResponse?.(user, status, body);
      }
      if (scheduling === 0 && inFlight === 0) drained();
    };
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: r.method,
        path: r.path,
        headers: r.headers,
        agent: agents[user],
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => finish(res.statusCode, body));
        res.on('error', () => finish(undefined, ''));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => finish(undefined, ''));
    req.end(r.body);
  };

  for (let user = 0; user < opts.users; user++) {
    let due = start + Math.random() * opts.intervalMs;
    const tick = () => {
      if (due >= end) {
        if (--scheduling === 0 && inFlight === 0) drained();
        return;
      }
      send(user, due);
      due += opts.intervalMs;
      setTimeout(tick, Math.max(0, due - performance.now()));
    };
    setTimeout(tick, Math.max(0, due - performance.now()));
  }
  await allDone;
  for (const a of agents) a.destroy();
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
