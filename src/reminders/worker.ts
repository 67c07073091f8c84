// Fires reminders as they fall due, on every instance: the database decides which are due (its
// clock) and which instance takes each (FOR UPDATE SKIP LOCKED in queries.fireReminders), so
// running several instances, or restarting one, fires each reminder once. An instance sleeps
// until the next reminder it knows of, at most `pollSeconds` (another instance's writes may have
// scheduled an earlier one), and is poked by its own writes.
import type { Logger } from 'pino';
import type { TaskService } from '../tasks/service.js';

export interface ReminderWorker {
  /** Look again now (a write of this instance may have scheduled a reminder). */
  poke(): void;
  stop(): void;
}

export function startReminderWorker(
  service: Pick<TaskService, 'fireReminders' | 'nextReminderIn'>,
  { pollSeconds, logger }: { pollSeconds: number; logger?: Logger | undefined },
): ReminderWorker {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let stopped = false;

  const schedule = (seconds: number) => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(() => void run(), Math.max(0, Math.min(seconds, pollSeconds)) * 1000);
    timer.unref();
  };

  async function run(): Promise<void> {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let wait = pollSeconds;
    try {
      do {
        again = false;
        const fired = await service.fireReminders();
        if (fired) logger?.info({ fired }, 'reminders fired');
        wait = (await service.nextReminderIn()) ?? pollSeconds;
      } while (again && !stopped);
    } catch (err) {
      // The database is away: try again later; what fell due meanwhile fires then, once.
      logger?.warn({ err: { message: (err as Error).message } }, 'firing reminders failed; next try later');
      wait = Math.min(5, pollSeconds);
    } finally {
      running = false;
    }
    // A reminder due in 0.3 s waits 0.3 s, plus a little so the database's clock has passed it.
    schedule(wait > 0 ? wait + 0.02 : 0.05);
  }

  schedule(0);
  return {
    poke: () => {
      if (!stopped) schedule(0);
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
