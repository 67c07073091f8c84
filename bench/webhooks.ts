// Webhook delivery latency and throughput, against the built server (dist/server.js, as `npm start`
// runs it) on a scratch PostgreSQL database, delivering to a receiver on loopback that verifies
// every signature with `standardwebhooks` and answers 204 at once.
//
//   npm run build && npx tsx bench/webhooks.ts        # BENCH_DATABASE_URL: another server
//
// Latency: writes one at a time, each timed from the moment its 201 arrived to the moment the
// receiver had the event (and from the moment the request was sent). Throughput: a burst of
// writes from 16 concurrent clients; events per second from the first write sent to the last
// event received, with the default concurrency (4 attempts in flight per endpoint, 32 per instance).
// A third of the writes of the baseline round also run without any endpoint, so the cost of the
// outbox on a write is there to compare, in the same run.
import { spawn } from 'node:child_process';
import { mintToken } from '../src/auth/mint-token.js';
import { startReceiver, verified } from '../tests/helpers/receiver.js';
import { scratchDatabase } from './scratch-database.js';

const SECRET = 'bench-secret-that-is-long-enough-0123456789abcdef';
const LATENCY_WRITES = Number(process.env.LATENCY_WRITES ?? 300);
const BURST_WRITES = Number(process.env.BURST_WRITES ?? 3000);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function main() {
  const scratch = await scratchDatabase('bench_webhooks', { poolMax: 1 });
  const child = spawn(process.execPath, ['dist/server.js'], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      DATABASE_URL: scratch.url,
      JWT_SECRET: SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_USER: '0',
      RATE_LIMIT_IP_FAILURES: '0',
      WARM_UP_REQUESTS: '0',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const port = /"port":(\d+),.*"msg":"listening"/.exec(out)?.[1];
      if (port) resolve(`http://127.0.0.1:${port}`);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const receiver = await startReceiver();
  try {
    const token = await mintToken({ secret: SECRET, userId: 'bench-webhooks', ttlSec: 3600 });
    const quiet = await mintToken({ secret: SECRET, userId: 'bench-no-endpoint', ttlSec: 3600 });
    const headers = (t: string) => ({ Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' });
    const create = async (t: string, title: string) => {
      const res = await fetch(`${base}/api/tasks`, { method: 'POST', headers: headers(t), body: JSON.stringify({ title }) });
      if (res.status !== 201) throw new Error(`create answered ${res.status}`);
      return ((await res.json()) as { id: number }).id;
    };
    const registered = await fetch(`${base}/api/webhooks`, {
      method: 'POST',
      headers: headers(token),
      body: JSON.stringify({ url: receiver.url, events: ['task.created'] }),
    });
    const { secret } = (await registered.json()) as { secret: string };
    const arrived = new Map<number, number>();
    const onArrival = () => {
      for (let i = arrived.size; i < receiver.received.length; i++) {
        const r = receiver.received[i]!;
        arrived.set(verified(secret, r).data.task_id as number, r.at);
      }
    };
    // Warm both paths up.
    for (let i = 0; i < 50; i++) {
      await create(token, `warm ${i}`);
      await create(quiet, `warm ${i}`);
    }
    await receiver.until(50);

    // Latency: one write at a time, each waiting for its event.
    const fromResponse: number[] = [];
    const fromRequest: number[] = [];
    for (let i = 0; i < LATENCY_WRITES; i++) {
      const sent = Date.now();
      const id = await create(token, `latency ${i}`);
      const answered = Date.now();
      await receiver.until(50 + i + 1);
      onArrival();
      fromResponse.push(arrived.get(id)! - answered);
      fromRequest.push(arrived.get(id)! - sent);
    }
    console.log(
      `latency, ${LATENCY_WRITES} writes one at a time (event received − 201 received): p50 ${ms(pct(fromResponse, 50))}, p95 ${ms(pct(fromResponse, 95))}, max ${ms(Math.max(...fromResponse))}`,
    );
    console.log(`latency from the request sent: p50 ${ms(pct(fromRequest, 50))}, p95 ${ms(pct(fromRequest, 95))}`);

    // A write's own time with an endpoint (its messages written in its transaction) and without,
    // alternating writes in the same run.
    const writeWith: number[] = [];
    const writeWithout: number[] = [];
    for (let i = 0; i < LATENCY_WRITES; i++) {
      const t0 = performance.now();
      await create(quiet, `quiet ${i}`);
      writeWithout.push(performance.now() - t0);
      const t1 = performance.now();
      await create(token, `cost ${i}`);
      writeWith.push(performance.now() - t1);
    }
    await receiver.until(50 + 2 * LATENCY_WRITES);
    console.log(
      `a create's own time, with an endpoint: p50 ${ms(pct(writeWith, 50))}; alternating with a user without: p50 ${ms(pct(writeWithout, 50))} (ratio ${(pct(writeWith, 50) / pct(writeWithout, 50)).toFixed(2)})`,
    );

    // Throughput: a burst from 16 clients.
    const before = receiver.received.length;
    const began = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < BURST_WRITES) await create(token, `burst ${next++}`);
      }),
    );
    const written = performance.now() - began;
    await receiver.until(before + BURST_WRITES, 300_000);
    const done = performance.now() - began;
    onArrival();
    console.log(
      `throughput: ${BURST_WRITES} writes from 16 clients in ${(written / 1000).toFixed(2)} s (${Math.round(BURST_WRITES / (written / 1000))}/s); ` +
        `all ${BURST_WRITES} events received and verified ${(done / 1000).toFixed(2)} s after the first write (${Math.round(BURST_WRITES / (done / 1000))} events/s)`,
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await receiver.close();
    await scratch.drop();
  }
}

await main();
