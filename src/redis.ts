// Redis, when REDIS_URL is set: the shared home of rate-limit counters across instances.
import { RedisStore } from 'rate-limit-redis';
import { createClient } from 'redis';
import type { Logger } from 'pino';
import type { RateLimitStores } from './http/rate-limit.js';

/** Attempts at start before giving up: a Redis that is not there fails the start, not hangs it. */
const START_ATTEMPTS = 5;

function create(url: string, started: () => boolean) {
  return createClient({
    url,
    socket: {
      // Once running, reconnect for as long as it takes (the limits let requests through meanwhile).
      reconnectStrategy: (retries: number, cause: Error) =>
        started() || retries < START_ATTEMPTS
          ? Math.min(100 * 2 ** retries, 3000)
          : new Error(`Redis at REDIS_URL cannot be reached: ${cause.message}`),
    },
  });
}

export type RedisConnection = ReturnType<typeof create>;

export async function connectRedis(url: string, logger?: Logger): Promise<RedisConnection> {
  let connected = false;
  const client = create(url, () => connected);
  // Without a listener a dropped connection would crash the process; the client reconnects itself.
  client.on('error', (err: Error) => logger?.warn({ err: { message: err.message } }, 'redis error'));
  await client.connect();
  connected = true;
  return client;
}

export function redisRateLimitStores(client: RedisConnection, prefix = 'todo-api:rl:'): RateLimitStores {
  const sendCommand = (...args: string[]) => client.sendCommand(args) as never;
  return {
    ip: new RedisStore({ sendCommand, prefix: `${prefix}ip:` }),
    user: new RedisStore({ sendCommand, prefix: `${prefix}user:` }),
  };
}
