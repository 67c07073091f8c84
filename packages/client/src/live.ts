// Keeping a local copy of the user's tasks current: a full sync from the change feed, then the
// event stream, read with fetch (so it sends Authorization like every other call, in browsers and
// in Node), resumed from the last event's id after every drop, and a new full sync when the
// server says the position is too old (cursor_expired). No dependency: the stream's format is
// small enough to read here (https://html.spec.whatwg.org/multipage/server-sent-events.html).
import type { components } from './openapi.js';

export type Task = components['schemas']['Task'];
export type TaskChange = components['schemas']['TaskChange'];
export type ReminderDue = components['schemas']['ReminderDue'];

export interface ChangesPage {
  changes: TaskChange[];
  /** Where the next read continues: keep it. */
  cursor: string;
  /** More changes are ready now. */
  hasMore: boolean;
}

/** Applies changes, in order, to a copy of the tasks keyed by id. */
export function applyChanges(tasks: Map<number, Task>, changes: readonly TaskChange[]): void {
  for (const c of changes) {
    if (c.op === 'upsert') tasks.set(c.task.id, c.task);
    else if (c.op === 'delete') tasks.delete(c.id);
    // Anything else (a reminder that fell due) changes no task.
  }
}

export interface Subscription {
  /** The user's tasks as this client knows them, kept current. */
  readonly tasks: ReadonlyMap<number, Task>;
  /** Where the copy stands in the feed (keep it to resume later with `subscribe({ cursor, tasks })`). */
  readonly cursor: string | undefined;
  /** Resolves once the first full sync (or catch-up) is done; until the server answers, it waits (failures go to onError). */
  readonly ready: Promise<void>;
  /** Stops following. */
  close(): void;
}

export interface SubscribeOptions {
  /** Called after each change is applied, with the change and the copy. */
  onChange?: (change: TaskChange, tasks: ReadonlyMap<number, Task>) => void;
  /**
   * Called once for each reminder that falls due while subscribed (and, after a drop, for those
   * that fell due meanwhile); deduplicate on `reminder.id` if you also read them elsewhere.
   */
  onReminder?: (reminder: ReminderDue) => void;
  /** Called when the copy was rebuilt by a full sync (at start, or after cursor_expired). */
  onSync?: (tasks: ReadonlyMap<number, Task>) => void;
  /** Told of each failure before the next try (the subscription keeps trying). */
  onError?: (err: unknown) => void;
  /** Resume from a copy kept earlier: its cursor and tasks. */
  cursor?: string;
  tasks?: Iterable<Task>;
  signal?: AbortSignal;
}

export interface LiveDeps {
  baseUrl: string;
  fetch: typeof globalThis.fetch;
  token(): Promise<string | null | undefined>;
  /** One page of the feed (the client's listChanges). */
  page(cursor: string | undefined): Promise<ChangesPage>;
}

interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** Reads a text/event-stream body, calling `onEvent` for each event and `onRetry` for each retry. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: SseEvent) => void, onRetry: (ms: number) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let name = '';
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let nl = buffer.search(/\r\n|\r|\n/);
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length || name) onEvent({ id, event: name || 'message', data: data.join('\n') });
        id = undefined;
        name = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(text);
        else if (field === 'event') name = text;
        else if (field === 'id') id = text;
        else if (field === 'retry' && /^\d+$/.test(text)) onRetry(Number(text));
      }
      nl = buffer.search(/\r\n|\r|\n/);
    }
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export function subscribe(deps: LiveDeps, options: SubscribeOptions = {}): Subscription {
  const tasks = new Map<number, Task>();
  for (const t of options.tasks ?? []) tasks.set(t.id, t);
  let cursor = options.cursor;
  const stop = new AbortController();
  options.signal?.addEventListener('abort', () => stop.abort());
  let retryMs = 3000;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  /** Reads the feed from `cursor` to its end (a full sync from nothing when there is none). */
  async function catchUp(): Promise<void> {
    if (cursor === undefined) {
      // A full sync builds a copy aside and swaps it in at once: readers never see it half-built.
      const fresh = new Map<number, Task>();
      let at: string | undefined;
      for (;;) {
        const page = await deps.page(at);
        applyChanges(fresh, page.changes);
        at = page.cursor;
        if (!page.hasMore) break;
      }
      tasks.clear();
      for (const [id, t] of fresh) tasks.set(id, t);
      cursor = at;
      options.onSync?.(tasks);
      return;
    }
    for (;;) {
      const page = await deps.page(cursor);
      for (const c of page.changes) {
        if (c.op === 'reminder') {
          options.onReminder?.(c.reminder);
          continue;
        }
        applyChanges(tasks, [c]);
        options.onChange?.(c, tasks);
      }
      cursor = page.cursor;
      if (!page.hasMore) break;
    }
  }

  /** Set once a stream is open: a drop after that is no failure to back off from. */
  let connected = false;

  async function follow(): Promise<void> {
    const token = await deps.token();
    const res = await deps.fetch(`${deps.baseUrl}/api/events`, {
      headers: {
        Accept: 'text/event-stream',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(cursor ? { 'Last-Event-ID': cursor } : {}),
      },
      signal: stop.signal,
    });
    if (!res.ok || !res.body) {
      const err = new Error(`the event stream answered ${res.status}`) as Error & { status: number };
      err.status = res.status;
      await res.body?.cancel();
      throw err;
    }
    connected = true;
    await readEvents(
      res.body,
      (e) => {
        if (e.event === 'change' && e.id) {
          const change = JSON.parse(e.data) as TaskChange;
          applyChanges(tasks, [change]);
          cursor = e.id;
          options.onChange?.(change, tasks);
        } else if (e.event === 'reminder' && e.id) {
          cursor = e.id;
          options.onReminder?.(JSON.parse(e.data) as ReminderDue);
        } else if (e.event === 'ready' && e.id && cursor === undefined) cursor = e.id;
        else if (e.event === 'cursor_expired') cursor = undefined;
      },
      (ms) => {
        retryMs = ms;
      },
    );
  }

  void (async () => {
    let failures = 0;
    while (!stop.signal.aborted) {
      try {
        await catchUp();
        markReady();
        failures = 0;
        await follow();
      } catch (err) {
        if (stop.signal.aborted) break;
        const status = (err as { status?: number }).status;
        // Too old: forget the position, sync afresh. A stream that was open and dropped: reconnect.
        // Anything else: try again later, backing off.
        if (status === 410) cursor = undefined;
        else if (!connected) {
          failures++;
          options.onError?.(err);
        }
      }
      connected = false;
      if (stop.signal.aborted) break;
      // The server's retry, spread out, and longer after repeated failures (at most 30 s).
      await sleep(Math.min(30_000, retryMs * 2 ** Math.min(failures, 4)) * (0.5 + Math.random() / 2), stop.signal);
    }
  })();

  return {
    tasks,
    get cursor() {
      return cursor;
    },
    ready,
    close: () => stop.abort(),
  };
}
