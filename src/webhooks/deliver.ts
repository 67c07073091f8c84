// One attempt to deliver one message to one endpoint, by the Standard Webhooks spec: the body is
// `{type, timestamp, data}`, signed with the official `standardwebhooks` library over
// `webhook-id.webhook-timestamp.body` with each current secret (two during a rotation's overlap,
// space-separated in `webhook-signature`). The connection goes to an address checked by the
// address policy; redirects are not followed; the attempt ends at its timeout.
import http from 'node:http';
import https from 'node:https';
import { Webhook } from 'standardwebhooks';
import { type AddressPolicy, checkedAddress, parseWebhookUrl, pinnedLookup, RefusedUrl } from './address-policy.js';

export interface OutgoingMessage {
  /** webhook-id: the same on every attempt. */
  messageId: string;
  type: string;
  /** When the event happened (the payload's timestamp), as the API writes instants. */
  happenedAt: string;
  data: unknown;
}

export type AttemptOutcome =
  /** 2xx: done. */
  | 'delivered'
  /** Try again by the schedule, or at `retryAfterSeconds`. */
  | 'retry'
  /** 410 Gone: the receiver asks for no more; the endpoint is disabled. */
  | 'gone'
  /** Will never succeed as it is (refused address, payload too large): given up at once. */
  | 'refused';

export interface Attempt {
  outcome: AttemptOutcome;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** What went wrong, for the user (never the receiver's body). */
  error?: string;
  /** From a 429's or 503's Retry-After. */
  retryAfterSeconds?: number;
  durationMs: number;
}

export interface DeliveryOptions {
  policy: AddressPolicy;
  timeoutMs: number;
  payloadMaxBytes: number;
  userAgent: string;
}

/** The body a receiver gets: Standard Webhooks' envelope around the thin data. */
export function webhookBody(message: OutgoingMessage): string {
  return JSON.stringify({ type: message.type, timestamp: message.happenedAt, data: message.data });
}

/** The `webhook-signature` value: one `v1,<base64>` per secret, by the official library. */
export function webhookSignature(secrets: readonly string[], messageId: string, at: Date, body: string): string {
  return secrets.map((secret) => new Webhook(secret).sign(messageId, at, body)).join(' ');
}

/**
 * Seconds from a Retry-After value (RFC 9110: delta-seconds, or an HTTP date with its day name),
 * from 1 (no retry in a tight loop) to `cap`; undefined for anything else.
 */
export function retryAfterSeconds(value: string | undefined, now: number, cap: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  let seconds: number;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  else if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(trimmed)) seconds = (Date.parse(trimmed) - now) / 1000;
  else return undefined;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(cap, Math.max(1, Math.ceil(seconds)));
}

const RETRY_AFTER_CAP_SECONDS = 24 * 3600;

/** `promise`, or an error saying `message` once `ms` have passed. */
function withinTime<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function deliver(
  endpoint: { url: string; secrets: readonly string[] },
  message: OutgoingMessage,
  opts: DeliveryOptions,
): Promise<Attempt> {
  const began = performance.now();
  const took = () => Math.round(performance.now() - began);
  const body = webhookBody(message);
  if (Buffer.byteLength(body) > opts.payloadMaxBytes) {
    return { outcome: 'refused', error: `the payload is over ${opts.payloadMaxBytes} bytes`, durationMs: took() };
  }
  let url: URL;
  let pinned: Awaited<ReturnType<typeof checkedAddress>>;
  try {
    url = parseWebhookUrl(endpoint.url, opts.policy);
    // Resolving the name is part of the attempt: its time counts against the same limit.
    pinned = await withinTime(checkedAddress(url, opts.policy), opts.timeoutMs, `no address for the host within ${opts.timeoutMs} ms`);
  } catch (err) {
    // A refused address is checked again on every attempt (DNS may change back), so it is retried
    // by the schedule like any failure, and the endpoint ends disabled if it stays refused.
    const refused = err instanceof RefusedUrl;
    return { outcome: 'retry', error: refused ? `refused: ${(err as Error).message}` : (err as Error).message, durationMs: took() };
  }
  const at = new Date();
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': opts.userAgent,
    'webhook-id': message.messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': webhookSignature(endpoint.secrets, message.messageId, at, body),
  };
  const request = url.protocol === 'https:' ? https.request : http.request;
  const left = Math.max(1, opts.timeoutMs - (performance.now() - began));
  return new Promise<Attempt>((resolve) => {
    let settled = false;
    const settle = (attempt: Omit<Attempt, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...attempt, durationMs: took() });
    };
    const req = request(url, {
      method: 'POST',
      headers,
      // A fresh connection per attempt: a kept-alive socket would skip the address check of a name
      // that resolves elsewhere now.
      agent: false,
      ...(pinned ? { lookup: pinnedLookup(pinned) } : {}),
    });
    const timer = setTimeout(() => {
      settle({ outcome: 'retry', error: `no answer within ${opts.timeoutMs} ms` });
      req.destroy();
    }, left);
    req.on('error', (err: NodeJS.ErrnoException) => settle({ outcome: 'retry', error: `connection failed: ${err.code ?? err.message}` }));
    // The status is all an attempt needs: the receiver's body is never read (so one that streams
    // without end, or slowly, holds nothing), and the connection is closed at once.
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', () => {});
      if (status >= 200 && status < 300) settle({ outcome: 'delivered', status });
      else if (status === 410) settle({ outcome: 'gone', status, error: 'the receiver answered 410 Gone: endpoint disabled' });
      else if (status >= 300 && status < 400)
        settle({ outcome: 'retry', status, error: `redirect (${status}) not followed: register the URL it points to` });
      else {
        const retryAfter =
          status === 429 || status === 503 ? retryAfterSeconds(res.headers['retry-after'], Date.now(), RETRY_AFTER_CAP_SECONDS) : undefined;
        settle({
          outcome: 'retry',
          status,
          error: `the receiver answered ${status}`,
          ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
        });
      }
      req.destroy();
    });
    req.end(body);
  });
}
