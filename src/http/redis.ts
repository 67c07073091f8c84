// Redis, when REDIS_URL is set: the shared home of rate-limit counters across instances.
import { RedisStore } from 'rate-limit-redis';
import { createClient } from 'redis';
import type { Logger } from 'pino';
import type { RateLimitStores } from './rate-limit.js';

function create(url: string) {
  return createClient({ url });
}

export type RedisConnection = ReturnType<typeof create>;

export async function connectRedis(url: string, logger?: Logger): Promise<RedisConnection> {
  const client = create(url);
  // Without a listener a dropped connection would crash the process; the client reconnects itself.
  client.on('error', (err: Error) => logger?.warn({ err: { message: err.message } }, 'redis error'));
  await client.connect();
  return client;
}

export function redisRateLimitStores(client: RedisConnection, prefix = 'todo-api:rl:'): RateLimitStores {
  const sendCommand = (...args: string[]) => client.sendCommand(args) as never;
  return {
    ip: new RedisStore({ sendCommand, prefix: `${prefix}ip:` }),
    user: new RedisStore({ sendCommand, prefix: `${prefix}user:` }),
  };
}
