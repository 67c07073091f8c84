// What the two bare servers (bench/baseline.ts, bench/physical.ts) share: the user read from the
// token's payload unverified, and a JSON body read whole. Never deploy either.
import type { IncomingMessage } from 'node:http';

export function userOf(req: IncomingMessage): string {
  const payload = (req.headers.authorization ?? '').split('.')[1] ?? '';
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string }).sub;
}

export async function jsonBody<T extends object>(req: IncomingMessage): Promise<Partial<T>> {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return raw ? (JSON.parse(raw) as Partial<T>) : {};
}
