// Which live streams wait on which user's changes, in this process. A wake-up only says "read the
// feed again": the feed is the truth, so a wake-up that is lost or doubled costs nothing but time
// (and the streams read again now and then in any case).

export interface ChangeHub {
  /** Wakes the streams of `userId`. */
  wake(userId: string): void;
  /** Wakes every stream: after a listener reconnects, and on the safety poll. */
  wakeAll(): void;
  /** Calls `onWake` on every wake-up of `userId` until the returned function is called. */
  subscribe(userId: string, onWake: () => void): () => void;
  /** Streams open now, in all and for one user. */
  count(userId?: string): number;
  /** Told when the first stream opens (true) and when the last one closes (false). */
  onActive(listener: (active: boolean) => void): void;
}

export function createChangeHub(): ChangeHub {
  const byUser = new Map<string, Set<() => void>>();
  const activeListeners: ((active: boolean) => void)[] = [];
  let total = 0;
  const call = (fns: Iterable<() => void>) => {
    for (const fn of [...fns]) fn();
  };
  return {
    wake(userId) {
      const fns = byUser.get(userId);
      if (fns) call(fns);
    },
    wakeAll() {
      for (const fns of [...byUser.values()]) call(fns);
    },
    subscribe(userId, onWake) {
      const fns = byUser.get(userId) ?? new Set<() => void>();
      byUser.set(userId, fns);
      fns.add(onWake);
      if (++total === 1) for (const l of activeListeners) l(true);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        fns.delete(onWake);
        if (fns.size === 0) byUser.delete(userId);
        if (--total === 0) for (const l of activeListeners) l(false);
      };
    },
    count(userId) {
      return userId === undefined ? total : (byUser.get(userId)?.size ?? 0);
    },
    onActive(listener) {
      activeListeners.push(listener);
    },
  };
}
