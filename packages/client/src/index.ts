// The typed frontend SDK (@todo-api/client): openapi-fetch over the contract's generated `paths`
// (./openapi.d.ts, a copy of the repository's generated types), a bearer token on every call, and
// RFC 9457 problems turned into one typed error. Browser-safe: no Node imports, no side effects.
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './openapi.js';

export type { components, paths } from './openapi.js';
export type Task = components['schemas']['Task'];
export type TaskCreate = components['schemas']['TaskCreate'];
export type TaskReplace = components['schemas']['TaskReplace'];
export type TaskUpdate = components['schemas']['TaskUpdate'];
export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];
export type TaskStats = components['schemas']['TaskStats'];
export type TaskPriority = components['schemas']['TaskPriority'];
export type ListTasksQuery = NonNullable<paths['/api/tasks']['get']['parameters']['query']>;
/** Every code the API can send, from the contract's closed list: a `switch` over it is checked. */
export type ProblemCode = Problem['code'];
/** A problem's code, or `unknown_error` for an answer that was not the API's problem document (a proxy's 502, say). */
export type TodoApiErrorCode = ProblemCode | 'unknown_error';

/** A task with its ETag (`"<version>"`), for writes that must not overwrite someone else's change. */
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

export interface TodoClientOptions {
  /** Where the API is, e.g. `https://api.example.com` or `http://localhost:8000`. */
  baseUrl: string;
  /**
   * Returns the bearer token for each call; may be async, e.g. Better Auth's
   * `async () => (await authClient.token()).data?.token`. Return null/undefined to send none.
   */
  getToken: () => string | null | undefined | Promise<string | null | undefined>;
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
  raw.use({
    async onRequest({ request }) {
      const token = await options.getToken();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
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

    async replaceTask(taskId: number, body: TaskReplace): Promise<Task> {
      return unwrap(await raw.PUT('/api/tasks/{taskId}', { params: { path: { taskId } }, body }));
    },

    async updateTask(taskId: number, body: TaskUpdate): Promise<Task> {
      return unwrap(await raw.PATCH('/api/tasks/{taskId}', { params: { path: { taskId } }, body }));
    },

    /** Sets completion to `completed`, or toggles it when omitted. */
    async setTaskCompletion(taskId: number, completed?: boolean): Promise<Task> {
      const params = { path: { taskId } };
      return unwrap(
        await raw.PATCH('/api/tasks/{taskId}/complete', completed === undefined ? { params } : { params, body: { completed } }),
      );
    },

    async deleteTask(taskId: number): Promise<void> {
      unwrap(await raw.DELETE('/api/tasks/{taskId}', { params: { path: { taskId } } }));
    },
  };
}

export type TodoClient = ReturnType<typeof createTodoClient>;
