// The typed frontend SDK (@todo-api/client): openapi-fetch over the contract's generated `paths`
// (./openapi.d.ts, a copy of the repository's generated types), a bearer token on every call, and
// RFC 9457 problems turned into one typed error. Browser-safe: no Node imports, no side effects.
import createClient, { type Client } from 'openapi-fetch';
import { type ChangesPage, type SubscribeOptions, type Subscription, subscribe } from './live.js';
import type { components, paths } from './openapi.js';

export {
  applyChanges,
  type ChangesPage,
  type ReminderDue,
  type SubscribeOptions,
  type Subscription,
  type TaskChange,
} from './live.js';

export type { components, paths } from './openapi.js';
export type Task = components['schemas']['Task'];
export type TaskCreate = components['schemas']['TaskCreate'];
export type TaskReplace = components['schemas']['TaskReplace'];
export type TaskUpdate = components['schemas']['TaskUpdate'];
export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];
export type TaskStats = components['schemas']['TaskStats'];
export type TaskPriority = components['schemas']['TaskPriority'];
export type TaskBatchUpdate = components['schemas']['TaskBatchUpdate'];
export type TasksDeleted = components['schemas']['TasksDeleted'];
export type TagCount = components['schemas']['TagCounts']['tags'][number];
export type WebhookEndpoint = components['schemas']['WebhookEndpoint'];
export type WebhookEndpointCreated = components['schemas']['WebhookEndpointCreated'];
export type WebhookEndpointCreate = components['schemas']['WebhookEndpointCreate'];
export type WebhookEndpointUpdate = components['schemas']['WebhookEndpointUpdate'];
export type WebhookEventType = components['schemas']['WebhookEventType'];
export type WebhookSecret = components['schemas']['WebhookSecret'];
export type WebhookAttempt = components['schemas']['WebhookAttempt'];
export type WebhookRedelivery = components['schemas']['WebhookRedelivery'];
/** What a delivery's body is, once verified: `new Webhook(secret).verify(rawBody, headers) as WebhookEvent`. */
export type WebhookEvent = components['schemas']['WebhookEvent'];
export type ListTasksQuery = NonNullable<paths['/api/tasks']['get']['parameters']['query']>;
/** Every code the API can send, from the contract's closed list: a `switch` over it is checked. */
export type ProblemCode = Problem['code'];
/** A problem's code, or `unknown_error` for an answer that was not the API's problem document (a proxy's 502, say). */
export type TodoApiErrorCode = ProblemCode | 'unknown_error';

/** A task with its ETag (`"<version>"`), for writes that must not overwrite someone else's change. */
/** A write's retry key: a fresh UUID per intended change. */
export interface WriteOptions {
  idempotencyKey?: string;
}
const keyHeader = (options: WriteOptions) => (options.idempotencyKey === undefined ? {} : { 'Idempotency-Key': options.idempotencyKey });

export interface TaskWithETag {
  task: Task;
  etag: string;
}

/** A non-2xx answer, carrying the API's problem document. */
export class TodoApiError extends Error {
  override readonly name = 'TodoApiError';
  readonly status: number;
  /** Stable machine-readable code, e.g. `task_not_found`, `token_expired`, `validation_failed`. */
  readonly code: TodoApiErrorCode;
  readonly title: string;
  readonly detail: string;
  /** For `validation_failed`: each rejected field. */
  readonly errors: FieldError[];
  /** The request id (`X-Request-Id`), to quote when reporting a problem. */
  readonly requestId: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, problem: Partial<Problem> | undefined, headers: Headers) {
    const detail = problem?.detail ?? `The API answered ${status}.`;
    super(detail);
    this.status = status;
    this.code = problem?.code ?? 'unknown_error';
    this.title = problem?.title ?? 'Error';
    this.detail = detail;
    this.errors = problem?.errors ?? [];
    this.requestId = problem?.instance ?? headers.get('X-Request-Id') ?? undefined;
    const retry = headers.get('Retry-After');
    this.retryAfterSeconds = retry !== null && /^\d+$/.test(retry) ? Number(retry) : undefined;
  }
}

/** Returns a bearer token, or null/undefined for none; may be async. */
export type TokenGetter = () => string | null | undefined | Promise<string | null | undefined>;

export interface TodoClientOptions {
  /** Where the API is, e.g. `https://api.example.com` or `http://localhost:8000`. */
  baseUrl: string;
  /**
   * Called before each call for the bearer token; may be async. Wrap a fetcher in `cachedToken`
   * to reuse each token until shortly before it expires instead of fetching one per call, e.g.
   * `cachedToken(async () => (await authClient.token()).data?.token)` with Better Auth.
   * Return null/undefined to send none.
   */
  getToken: TokenGetter;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof globalThis.fetch;
}

export interface TaskPage {
  tasks: Task[];
  /** Pass as `cursor` (with the same query) for the next page; undefined on the last page. */
  nextCursor: string | undefined;
}

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

function unwrap<T>(result: Result<T>): T {
  if (result.response.ok) return result.data as T;
  throw new TodoApiError(result.response.status, result.error as Partial<Problem> | undefined, result.response.headers);
}

/** Thrown when a response lacks its ETag, before a write could fail with a confusing 412. */
export class MissingETagError extends Error {
  override readonly name = 'MissingETagError';
}

function etagOf(response: Response): string {
  const etag = response.headers.get('ETag');
  if (etag) return etag;
  throw new MissingETagError(
    `The response to ${response.url || 'the request'} carried no ETag header, so a conditional write cannot be made. ` +
      'From a browser on another origin, the API must expose it (Access-Control-Expose-Headers: ETag, which this API sends); ' +
      'a proxy in between may also strip it.',
  );
}

/** A token getter that reuses its token until shortly before it expires; see `cachedToken`. */
export interface CachedToken {
  (): Promise<string | undefined>;
  /** Forgets the token (call it on sign-out or a change of user): the next call fetches a new one. */
  clear(): void;
}

export interface CachedTokenOptions {
  /** Replace a token this many seconds before it expires (default 30), so none expires in flight. */
  renewBeforeExpirySeconds?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

/** The `iat` and `exp` claims of a JWT, read without verifying it (the API verifies it). */
function lifetimeClaims(token: string): { iat?: unknown; exp?: unknown } {
  try {
    const payload = token.split('.')[1] ?? '';
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null ? claims : {};
  } catch {
    return {};
  }
}

/**
 * Wraps a token fetcher (Better Auth's `authClient.token()` in a browser, `auth.api.getToken()` on a
 * server) so that one token serves every call until `renewBeforeExpirySeconds` before its `exp`:
 * concurrent calls share one fetch, and a failed or empty fetch is not kept. The lifetime is the
 * token's own `exp - iat`, counted from when the fetch began on this machine's clock, so a browser
 * whose clock is off still renews in time. A token without a readable `exp` is not kept (fetched
 * per call). `createTodoClient` clears it when the API answers 401, so the next call gets a new
 * token. Keep one per signed-in user: on a server, never share one between requests of different
 * users.
 */
export function cachedToken(fetchToken: TokenGetter, options: CachedTokenOptions = {}): CachedToken {
  const now = options.now ?? Date.now;
  const renewBeforeMs = (options.renewBeforeExpirySeconds ?? 30) * 1000;
  let kept: { token: string; renewAt: number } | undefined;
  let inFlight: Promise<string | undefined> | undefined;
  let generation = 0;

  async function fetchAndKeep(): Promise<string | undefined> {
    const started = now();
    const mine = generation;
    const token = (await fetchToken()) ?? undefined;
    if (token === undefined || mine !== generation) return token;
    const { iat, exp } = lifetimeClaims(token);
    if (typeof exp !== 'number') return token;
    const lifetimeMs = (typeof iat === 'number' ? exp - iat : exp - started / 1000) * 1000;
    const renewAt = started + lifetimeMs - renewBeforeMs;
    if (renewAt > started) kept = { token, renewAt };
    return token;
  }

  const get = (async () => {
    if (kept !== undefined && now() < kept.renewAt) return kept.token;
    kept = undefined;
    if (inFlight === undefined) {
      const fetching = fetchAndKeep().finally(() => {
        if (inFlight === fetching) inFlight = undefined;
      });
      inFlight = fetching;
    }
    return inFlight;
  }) as CachedToken;
  get.clear = () => {
    kept = undefined;
    inFlight = undefined;
    generation++;
  };
  return get;
}

/** The `cursor` of a `Link: <...>; rel="next"` header, if any. */
export function nextCursorFromLink(link: string | null): string | undefined {
  const target = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  return target ? (new URL(target, 'http://base.invalid').searchParams.get('cursor') ?? undefined) : undefined;
}

export function createTodoClient(options: TodoClientOptions) {
  const raw: Client<paths> = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const { getToken } = options;
  raw.use({
    async onRequest({ request }) {
      const token = await getToken();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
    onResponse({ response }) {
      // A refused token (expired early, revoked, its key rotated out) is not reused.
      if (response.status === 401 && 'clear' in getToken && typeof getToken.clear === 'function') getToken.clear();
      return undefined;
    },
  });

  return {
    /** The underlying openapi-fetch client, for any path of the contract (e.g. /api/{userId}/tasks). */
    raw,

    async listTasks(query: ListTasksQuery = {}): Promise<TaskPage> {
      const result = await raw.GET('/api/tasks', { params: { query } });
      return { tasks: unwrap(result), nextCursor: nextCursorFromLink(result.response.headers.get('Link')) };
    },

    /** Every task matching the query, page after page. */
    async *listAllTasks(query: Omit<ListTasksQuery, 'cursor'> = {}): AsyncGenerator<Task, void, undefined> {
      let cursor: string | undefined;
      do {
        const page = await this.listTasks(cursor === undefined ? query : { ...query, cursor });
        yield* page.tasks;
        cursor = page.nextCursor;
      } while (cursor !== undefined);
    },

    /**
     * Creates a task. With `idempotencyKey` (a fresh UUID per intended task), retrying after a
     * network failure cannot create it twice: the retry gets the original task back.
     */
    async createTask(body: TaskCreate, options: { idempotencyKey?: string } = {}): Promise<Task> {
      const header = options.idempotencyKey === undefined ? {} : { 'Idempotency-Key': options.idempotencyKey };
      return unwrap(await raw.POST('/api/tasks', { params: { header }, body }));
    },

    async getTask(taskId: number): Promise<Task> {
      return unwrap(await raw.GET('/api/tasks/{taskId}', { params: { path: { taskId } } }));
    },

    /**
     * The task and its ETag. With `ifNoneMatch` (an ETag you hold), resolves to `undefined` while
     * the task is unchanged (the server answers 304 without a body).
     */
    async getTaskWithETag(taskId: number, options: { ifNoneMatch?: string } = {}): Promise<TaskWithETag | undefined> {
      const header = options.ifNoneMatch === undefined ? {} : { 'If-None-Match': options.ifNoneMatch };
      const result = await raw.GET('/api/tasks/{taskId}', { params: { path: { taskId }, header } });
      if (result.response.status === 304) return undefined;
      return { task: unwrap(result), etag: etagOf(result.response) };
    },

    /** Replaces the task only if it still has `etag`; otherwise throws a 412 `precondition_failed`. */
    async replaceTaskIfMatch(taskId: number, etag: string, body: TaskReplace): Promise<TaskWithETag> {
      const result = await raw.PUT('/api/tasks/{taskId}', { params: { path: { taskId }, header: { 'If-Match': etag } }, body });
      return { task: unwrap(result), etag: etagOf(result.response) };
    },

    /** Updates the task only if it still has `etag`; otherwise throws a 412 `precondition_failed`. */
    async updateTaskIfMatch(taskId: number, etag: string, body: TaskUpdate): Promise<TaskWithETag> {
      const result = await raw.PATCH('/api/tasks/{taskId}', { params: { path: { taskId }, header: { 'If-Match': etag } }, body });
      return { task: unwrap(result), etag: etagOf(result.response) };
    },

    /** Deletes the task only if it still has `etag`; otherwise throws a 412 `precondition_failed`. */
    async deleteTaskIfMatch(taskId: number, etag: string): Promise<void> {
      unwrap(await raw.DELETE('/api/tasks/{taskId}', { params: { path: { taskId }, header: { 'If-Match': etag } } }));
    },

    /** Counts by status, overdue, and due today in the IANA time zone `tz` (default UTC). */
    async getTaskStats(query: { tz?: string } = {}): Promise<TaskStats> {
      return unwrap(await raw.GET('/api/tasks/stats', { params: { query } }));
    },

    /** Deletes every completed task; resolves to how many were deleted. */
    async clearCompletedTasks(): Promise<number> {
      return unwrap(await raw.DELETE('/api/tasks', { params: { query: { status: 'completed' } } })).deleted;
    },

    /** With `idempotencyKey`, a retry after a network failure changes nothing and gets the first answer. */
    async replaceTask(taskId: number, body: TaskReplace, options: WriteOptions = {}): Promise<Task> {
      return unwrap(await raw.PUT('/api/tasks/{taskId}', { params: { path: { taskId }, header: keyHeader(options) }, body }));
    },

    /** With `idempotencyKey`, a retry after a network failure changes nothing and gets the first answer. */
    async updateTask(taskId: number, body: TaskUpdate, options: WriteOptions = {}): Promise<Task> {
      return unwrap(await raw.PATCH('/api/tasks/{taskId}', { params: { path: { taskId }, header: keyHeader(options) }, body }));
    },

    /**
     * Sets completion to `completed`, or toggles it when omitted. Completing a recurring task moves
     * it to its next occurrence: send `idempotencyKey` so a retry cannot move it twice.
     */
    async setTaskCompletion(taskId: number, completed?: boolean, options: WriteOptions = {}): Promise<Task> {
      const params = { path: { taskId }, header: keyHeader(options) };
      return unwrap(
        await raw.PATCH('/api/tasks/{taskId}/complete', completed === undefined ? { params } : { params, body: { completed } }),
      );
    },

    async deleteTask(taskId: number): Promise<void> {
      unwrap(await raw.DELETE('/api/tasks/{taskId}', { params: { path: { taskId } } }));
    },

    /**
     * One change to 1–100 tasks, all or nothing (`{ids, completed?, due_at?, priority?, add_tags?,
     * remove_tags?}`); resolves to the tasks in the order of `ids`. An id that is not the user's
     * task throws a 404 `task_not_found` naming it, and nothing changes.
     */
    async updateTasks(body: TaskBatchUpdate, options: WriteOptions = {}): Promise<Task[]> {
      return unwrap(await raw.PATCH('/api/tasks', { params: { header: keyHeader(options) }, body })).tasks;
    },

    /** Deletes 1–100 tasks; resolves to which were deleted and which the user did not have. Safe to retry. */
    async deleteTasks(ids: number[]): Promise<TasksDeleted> {
      return unwrap(await raw.POST('/api/tasks/batch-delete', { body: { ids } }));
    },

    /**
     * One page of the change feed after `cursor` (a full sync's first page without one); with
     * `reminders: true`, the reminders that fell due too (`op: "reminder"`).
     */
    async listChanges(query: { cursor?: string; limit?: number; reminders?: boolean } = {}): Promise<ChangesPage> {
      const page = unwrap(await raw.GET('/api/tasks/changes', { params: { query } }));
      return { changes: page.changes, cursor: page.cursor, hasMore: page.has_more };
    },

    /**
     * The change feed from `cursor` (a full sync without one), a page at a time until it is read
     * to the end: apply each page's changes, and keep its cursor to read on from later.
     */
    async *changes(cursor?: string, limit?: number): AsyncGenerator<ChangesPage, void, undefined> {
      let at = cursor;
      for (;;) {
        const page = await this.listChanges({ ...(at === undefined ? {} : { cursor: at }), ...(limit === undefined ? {} : { limit }) });
        yield page;
        at = page.cursor;
        if (!page.hasMore) return;
      }
    },

    /**
     * A copy of the user's tasks kept current: a full sync, then the live event stream, resumed
     * after every drop; see `Subscription`.
     */
    subscribe(subscribeOptions: SubscribeOptions = {}): Subscription {
      return subscribe(
        {
          baseUrl: options.baseUrl.replace(/\/+$/, ''),
          fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
          token: async () => (await getToken()) ?? undefined,
          page: (cursor) =>
            this.listChanges({ ...(cursor === undefined ? {} : { cursor }), ...(subscribeOptions.onReminder ? { reminders: true } : {}) }),
        },
        subscribeOptions,
      );
    },

    /** The user's tags, most used first, each with how many tasks carry it and how many of those are pending. */
    async listTags(): Promise<TagCount[]> {
      return unwrap(await raw.GET('/api/tasks/tags')).tags;
    },

    /** The user's webhook endpoints, oldest first (never their secrets). */
    async listWebhooks(): Promise<WebhookEndpoint[]> {
      return unwrap(await raw.GET('/api/webhooks'));
    },

    /**
     * Registers a URL for the user's events (every event when `events` is absent). The result's
     * `secret` is shown only here: keep it, and verify deliveries with it (`standardwebhooks`).
     */
    async createWebhook(body: WebhookEndpointCreate): Promise<WebhookEndpointCreated> {
      return unwrap(await raw.POST('/api/webhooks', { body }));
    },

    async getWebhook(webhookId: number): Promise<WebhookEndpoint> {
      return unwrap(await raw.GET('/api/webhooks/{webhookId}', { params: { path: { webhookId } } }));
    },

    /** Changes the fields given; `enabled: true` turns a disabled endpoint back on. */
    async updateWebhook(webhookId: number, body: WebhookEndpointUpdate): Promise<WebhookEndpoint> {
      return unwrap(await raw.PATCH('/api/webhooks/{webhookId}', { params: { path: { webhookId } }, body }));
    },

    async deleteWebhook(webhookId: number): Promise<void> {
      unwrap(await raw.DELETE('/api/webhooks/{webhookId}', { params: { path: { webhookId } } }));
    },

    /** A new secret (shown only here); the previous one signs too until `previous_secret_expires_at`. */
    async rotateWebhookSecret(webhookId: number): Promise<WebhookSecret> {
      return unwrap(await raw.POST('/api/webhooks/{webhookId}/rotate-secret', { params: { path: { webhookId } } }));
    },

    /** The endpoint's latest delivery attempts, newest first. */
    async listWebhookAttempts(webhookId: number, query: { limit?: number } = {}): Promise<WebhookAttempt[]> {
      return unwrap(await raw.GET('/api/webhooks/{webhookId}/attempts', { params: { path: { webhookId }, query } }));
    },

    /** Queues a message (its `webhook-id`, from the attempts) for delivery again, with the same id. */
    async redeliverWebhookMessage(webhookId: number, messageId: string): Promise<WebhookRedelivery> {
      return unwrap(
        await raw.POST('/api/webhooks/{webhookId}/messages/{messageId}/redeliver', { params: { path: { webhookId, messageId } } }),
      );
    },
  };
}

export type TodoClient = ReturnType<typeof createTodoClient>;
