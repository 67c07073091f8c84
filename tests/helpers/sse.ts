// A Server-Sent Events reader over fetch, as a non-browser client reads the stream: each event's
// id, name and data, in order, and the comments (heartbeats) counted.

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  events: SseEvent[];
  comments: number;
  retry: number | undefined;
  /** Resolves with the first event at or after `from` (an index into events) that `match` accepts. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
  /** The body, when the answer is not a stream (a problem). */
  text(): Promise<string>;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  const waiters: (() => void)[] = [];
  const stream: SseStream = {
    status: res.status,
    headers: res.headers,
    events,
    comments: 0,
    retry: undefined,
    next(match = () => true, timeoutMs = 10_000) {
      let seen = 0;
      return new Promise((resolve, reject) => {
        const check = () => {
          for (; seen < events.length; seen++) {
            if (match(events[seen]!)) {
              resolve(events[seen]!);
              return true;
            }
          }
          return false;
        };
        if (check()) return;
        const timer = setTimeout(
          () => reject(new Error(`no matching event within ${timeoutMs} ms (got ${events.map((e) => e.event).join(', ')})`)),
          timeoutMs,
        );
        const waiter = () => {
          if (check()) clearTimeout(timer);
          else waiters.push(waiter);
        };
        waiters.push(waiter);
      });
    },
    ended: Promise.resolve(),
    close: () => abort.abort(),
    text: () => res.text(),
  };
  if (!res.headers.get('content-type')?.startsWith('text/event-stream') || !res.body) return stream;
  stream.ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    let current: Partial<SseEvent> & { data?: string } = {};
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          if (line === '') {
            if (current.event !== undefined || current.data !== undefined) {
              events.push({ id: current.id, event: current.event ?? 'message', data: current.data ?? '' });
              for (const w of waiters.splice(0)) w();
            }
            current = {};
          } else if (line.startsWith(':')) stream.comments++;
          else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') current.data = current.data === undefined ? value : `${current.data}\n${value}`;
            else if (field === 'event') current.event = value;
            else if (field === 'id') current.id = value;
            else if (field === 'retry') stream.retry = Number(value);
          }
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return stream;
}
