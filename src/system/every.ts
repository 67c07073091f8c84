// A background chore run now and then (purges): first after `firstMs`, then every `everyMs`,
// never keeping the process alive; a failure is logged and the next run tries again.
import type { Logger } from 'pino';

export interface Chore {
  /** Runs the chore once; resolves to what it did, for the log (nothing logged when falsy). */
  run(): Promise<Record<string, unknown> | undefined>;
  /** The log line of a run that did something, and of one that failed. */
  done: string;
  failed: string;
}

/** Schedules `chore`; the returned function stops it. */
export function every(everyMs: number, chore: Chore, logger: Logger, firstMs = 1000): () => void {
  const run = () =>
    chore.run().then(
      (what) => what && logger.info(what, chore.done),
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, chore.failed),
    );
  const first = setTimeout(run, firstMs);
  const timer = setInterval(run, everyMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
