// Delivers webhook messages, on every instance. The messages are in the database (written with
// the changes they report); an instance claims due ones (queries.claimMessages: SKIP LOCKED and a
// lease, so each attempt is one instance's and a dead instance's claims fall due again), delivers
// them and records each attempt. It looks at once when its own writes may have queued messages
// (poke), then sleeps until the next known attempt, at most `pollSeconds` (another instance may
// have queued some and died before delivering them).
import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config.js';
import type { Database } from '../db/types.js';
import type { AddressPolicy } from './address-policy.js';
import { type Attempt, deliver } from './deliver.js';
import * as queries from './queries.js';

export interface WebhookDispatcher {
  /** Look now: a write of this instance may have queued messages. */
  poke(): void;
  /** Stops claiming; waits (at most `graceMs`) for the attempts in flight to be recorded. */
  stop(graceMs?: number): Promise<void>;
}

/** The retry delay after attempt `n` (1-based) of the schedule, with ±20 % jitter; undefined: no more. */
export function retryDelaySeconds(schedule: readonly number[], n: number, random = Math.random): number | undefined {
  const base = schedule[n - 1];
  if (base === undefined) return undefined;
  return base * (0.8 + 0.4 * random());
}

export function startWebhookDispatcher(
  db: Database,
  config: WebhooksConfig,
  { policy, logger, userAgent }: { policy: AddressPolicy; logger?: Logger | undefined; userAgent: string },
): WebhookDispatcher {
  const leaseSeconds = Math.ceil(config.timeoutMs / 1000) + 5;
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now()); a later look never postpones an earlier one. */
  let timerAt = Number.POSITIVE_INFINITY;
  let running = false;
  let again = false;
  let stopped = false;
  /** A write asked for a look that has not started yet; when the last such look started. */
  let poked = false;
  let lastPokedLook = Number.NEGATIVE_INFINITY;
  /** When a look last found something to send: while that is recent, webhooks are in use here and each write is worth a look at once. */
  let lastFound = Number.NEGATIVE_INFINITY;

  const schedule = (seconds: number) => {
    if (stopped) return;
    const delay = Math.max(0, Math.min(seconds, config.pollSeconds)) * 1000;
    const at = performance.now() + delay;
    if (timer && at >= timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      if (poked) {
        poked = false;
        lastPokedLook = performance.now();
      }
      void run();
    }, delay);
    timer.unref();
  };

  async function attempt(m: queries.ClaimedMessage): Promise<void> {
    let result: Attempt;
    try {
      result = await deliver(
        { url: m.url, secrets: m.previous_secret ? [m.secret, m.previous_secret] : [m.secret] },
        { messageId: m.message_id, type: m.event_type, happenedAt: m.created_at, data: m.data },
        { policy, timeoutMs: config.timeoutMs, payloadMaxBytes: config.payloadMaxBytes, userAgent },
      );
    } catch (err) {
      result = { outcome: 'retry', error: `could not send: ${(err as Error).message}`, durationMs: 0 };
    }
    // Nor does it add attempts: a receiver that always asks for more time is given up when the
    // schedule runs out, like any other.
    // Retry-After lengthens a step, never shortens it: a receiver asking for a second during
    // maintenance is not given up in seconds.
    const scheduled = result.outcome === 'retry' ? retryDelaySeconds(config.retrySchedule, m.attempts) : undefined;
    const retryIn = scheduled === undefined ? undefined : Math.max(scheduled, result.retryAfterSeconds ?? 0);
    const state = result.outcome === 'delivered' ? 'delivered' : result.outcome === 'retry' && retryIn !== undefined ? 'pending' : 'failed';
    try {
      const recorded = await queries.recordAttempt(db, {
        messagePk: m.id,
        endpointId: m.endpoint_id,
        attempts: m.attempts,
        status: result.status,
        error: result.error,
        durationMs: result.durationMs,
        state,
        retryInSeconds: state === 'pending' ? retryIn : undefined,
        gone: result.outcome === 'gone',
      });
      if (recorded?.disabled) logger?.warn({ endpoint: m.endpoint_id, reason: recorded.disabled }, 'webhook endpoint disabled');
    } catch (err) {
      // Unrecorded, the lease runs out and the message is sent again: at least once, never lost.
      logger?.warn({ err: { message: (err as Error).message } }, 'recording a webhook attempt failed; it will be sent again');
    }
  }

  async function run(): Promise<void> {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let wait = config.pollSeconds;
    try {
      let claimedAny = false;
      do {
        again = false;
        const room = config.concurrency - inFlight.size;
        if (room <= 0) break;
        const claimed = await queries.claimMessages(db, room, {
          perEndpoint: config.concurrencyPerEndpoint,
          perUser: config.concurrencyPerUser,
          leaseSeconds,
        });
        for (const m of claimed) {
          const p = attempt(m).finally(() => {
            inFlight.delete(p);
            // A finished attempt makes room (and may leave a retry due soon): look again.
            if (!stopped) schedule(0);
          });
          inFlight.add(p);
        }
        if (claimed.length > 0) {
          claimedAny = true;
          lastFound = performance.now();
        }
        if (claimed.length === room) again = true;
      } while (again && !stopped && inFlight.size < config.concurrency);
      if (inFlight.size === 0) {
        const next = await queries.nextLook(db);
        if (again)
          wait = 0; // a write asked for a look while this one was ending
        else if (next.dueIn === undefined) wait = config.pollSeconds;
        else if (next.dueIn > 0 || claimedAny) wait = next.dueIn;
        // Due now, yet nothing could be claimed: the limits hold them (another instance's
        // attempts to the same endpoint or user). Look again when the first of those ends.
        else wait = Math.max(0.05, next.leaseEndsIn ?? 1);
      }
    } catch (err) {
      logger?.warn({ err: { message: (err as Error).message } }, 'claiming webhook messages failed; next try later');
      wait = Math.min(5, config.pollSeconds);
    } finally {
      running = false;
    }
    if (inFlight.size === 0) schedule(wait > 0 ? wait + 0.02 : 0);
  }

  schedule(0);
  return {
    poke() {
      if (stopped) return;
      // Writes come in bursts: at most one look per 20 ms for them while looks find nothing, so an
      // instance busy with writes of users without endpoints does not claim once per write. A
      // write after a quiet spell, or while looks find messages, is looked at at once.
      poked = true;
      const now = performance.now();
      schedule(now - lastFound < 1000 ? 0 : Math.max(0, (lastPokedLook + 20 - now) / 1000));
    },
    async stop(graceMs = 5000) {
      stopped = true;
      clearTimeout(timer);
      if (inFlight.size === 0) return;
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise((resolve) => {
          timeout = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timeout);
    },
  };
}
