// A tool call is its REST operation's task-service call: the arguments checked against the tool's
// schema (the operation's parameters and body, from the contract), the service called for the
// token's user, and its outcome turned into a tool result: structuredContent shaped as the tool's
// outputSchema, with `now` (the server's clock, so a model can tell what "tomorrow" is), and the
// same JSON as text, as the MCP specification asks, for clients that read only text; or, for a
// problem, isError with the code, detail and each rejected argument REST would have answered.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type HttpProblem, problems } from '../http/problem.js';
import type {
  BatchUpdateInput,
  CreateInput,
  ReplaceInput,
  TaskService,
  TaskWithEtag,
  UpdateInput,
  WriteOutcome,
} from '../tasks/service.js';
import type { CheckedArguments } from './arguments.js';
import { isTaskIdText } from '../tasks/task-id.js';
import type { Tool } from './tools.js';

export interface Caller {
  userId: string;
  /** Tasks this caller was told are not found: for the security log's probe check. */
  notFound(...taskIds: number[]): void;
}

interface ToolProblem {
  status: number;
  code: string;
  detail: string;
  errors?: { path: string; message: string }[] | undefined;
}

/** A REST pointer (/query/cursor, /header/idempotency-key, /body/tags/0) as the tool's argument name. */
function argumentPath(tool: Tool, pointer: string): string {
  const [, where, name, ...rest] = pointer.split('/');
  if (where === 'body' && name) return [name, ...rest].join('/');
  for (const [arg, p] of Object.entries(tool.http.params)) {
    const place = where === 'header' ? 'header' : where;
    if (p.in === place && p.name.toLowerCase() === name?.toLowerCase()) return [arg, ...rest].join('/');
  }
  return pointer;
}

function problemResult(problem: ToolProblem): CallToolResult {
  const fields = (problem.errors ?? []).map((e) => `\n- ${e.path || '(request)'}: ${e.message}`).join('');
  return {
    isError: true,
    content: [
      { type: 'text', text: `${problem.status} ${problem.code}: ${problem.detail}${fields}` },
      {
        type: 'text',
        text: JSON.stringify({ status: problem.status, code: problem.code, detail: problem.detail, errors: problem.errors }),
      },
    ],
  };
}

/** The problem REST answers for the same outcome, its field pointers named as arguments. */
export function fromHttp(tool: Tool, problem: HttpProblem): CallToolResult {
  return problemResult({
    status: problem.status,
    code: problem.code,
    detail: problem.detail,
    errors: problem.errors?.map((e) => ({ ...e, path: argumentPath(tool, e.path) })),
  });
}

function invalid(errors: { path: string; message: string }[]): CallToolResult {
  return problemResult({
    status: 422,
    code: 'validation_failed',
    detail: `The request is invalid: ${errors.map((e) => `${e.path || 'the arguments'} ${e.message}`).join('; ')}.`,
    errors,
  });
}

/** A successful result: the data, and the time it was made, as structuredContent and as its JSON text. */
function result(data: Record<string, unknown>): CallToolResult {
  const structuredContent = { ...data, now: new Date().toISOString() };
  return { structuredContent, content: [{ type: 'text', text: JSON.stringify(structuredContent) }] };
}

const taskResult = ({ task, etag }: TaskWithEtag): CallToolResult => result({ task, etag });

/** A task id as a path argument: a whole number from 1, as a JSON number or in plain decimal digits. */
const isTaskId = (value: unknown) =>
  (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) || (typeof value === 'string' && isTaskIdText(value));

// A header argument is taken as it is given: visible ASCII, spaces only between other characters
// (an HTTP client would trim them away, making " k" and "k" one idempotency key), no CR, LF or NUL.
const HEADER_VALUE = /^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/;

/** Checks the schema cannot make: arguments that stand for a URL part or a header, as REST gets them. */
function protocolArgumentErrors(tool: Tool, args: Record<string, unknown>): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  for (const [arg, target] of Object.entries(tool.http.params)) {
    if (!Object.hasOwn(args, arg)) continue;
    const value = args[arg];
    if (target.in === 'path' && !isTaskId(value)) errors.push({ path: arg, message: 'must be a task id: a whole number from 1' });
    if (target.in === 'header' && typeof value === 'string' && !HEADER_VALUE.test(value)) {
      errors.push({ path: arg, message: 'must be printable ASCII, without spaces at either end' });
    }
  }
  return errors;
}

const MAX_UNKNOWN_NAMED = 10;
/** An argument name as the caller sent it, when it is plain; otherwise JSON-quoted and cut to 64 characters. */
const quotedName = (name: string) => (/^[A-Za-z0-9_]{1,64}$/.test(name) ? name : JSON.stringify(name.slice(0, 64)));

export interface ToolCallDeps {
  service: TaskService;
  check: (tool: Tool, args: Record<string, unknown>) => CheckedArguments;
}

export async function callTool(
  { service, check }: ToolCallDeps,
  tool: Tool,
  given: Record<string, unknown>,
  caller: Caller,
): Promise<CallToolResult> {
  // An argument the tool does not have is refused by name, as the contract refuses unknown fields
  // (own properties only: `constructor` or `toString` are no arguments of any tool).
  const unknown = Object.keys(given).filter((arg) => !Object.hasOwn(tool.http.arguments.properties, arg));
  // Named as data, never as text of the server's own: control characters escaped, cut short, and
  // a few of them only (a result must not grow with what a caller makes up).
  const known = Object.fromEntries(Object.entries(given).filter(([arg]) => !unknown.includes(arg)));
  // A task id given as decimal text is the same id (REST reads it from the URL, as text).
  const normalized = { ...known };
  if (typeof normalized.task_id === 'string' && isTaskId(normalized.task_id)) normalized.task_id = Number(normalized.task_id);
  const protocolErrors = protocolArgumentErrors(tool, known);
  const checked = check(tool, normalized);
  // Every rejected argument at once, as REST names every rejected field: the unknown ones, then
  // the others (a path or header argument by its own rule rather than the schema's too).
  const errors = [
    ...unknown.slice(0, MAX_UNKNOWN_NAMED).map((arg) => ({ path: quotedName(arg), message: 'is not an argument of this tool' })),
    ...(unknown.length > MAX_UNKNOWN_NAMED
      ? [{ path: '(arguments)', message: `and ${unknown.length - MAX_UNKNOWN_NAMED} more are not arguments of this tool` }]
      : []),
    ...protocolErrors,
    ...(checked.ok ? [] : checked.errors.filter((e) => !protocolErrors.some((p) => p.path === e.path))),
  ];
  if (errors.length || !checked.ok) return invalid(errors);
  const args = checked.args;
  const { userId } = caller;
  const taskId = args.task_id as number;
  const ifMatch = args.if_match as string | undefined;
  /** The body fields of the operation, as REST's body would carry them (defaults filled in). */
  const body = <T>() =>
    Object.fromEntries(Object.entries(args).filter(([arg]) => tool.http.body?.includes(arg) && !Object.hasOwn(tool.http.params, arg))) as T;

  const written = (outcome: WriteOutcome): CallToolResult => {
    if (outcome.kind === 'not_found') {
      caller.notFound(outcome.taskId);
      return fromHttp(tool, problems.taskNotFound(outcome.taskId));
    }
    if (outcome.kind === 'precondition_failed') {
      return fromHttp(tool, problems.preconditionFailed(outcome.taskId, outcome.currentEtag, ifMatch ?? ''));
    }
    if (outcome.kind === 'invalid') return fromHttp(tool, problems.validation(outcome.errors));
    if (outcome.kind === 'key_reused') return fromHttp(tool, problems.idempotencyKeyReused());
    return taskResult(outcome);
  };
  const writeOptions = { ifMatch, idempotencyKey: args.idempotency_key as string | undefined };

  switch (tool.http.operationId) {
    case 'listTasks': {
      const outcome = await service.list(userId, {
        status: args.status as never,
        sort: args.sort as never,
        order: args.order as never,
        limit: args.limit as number,
        cursor: args.cursor as string | undefined,
        priority: args.priority as never,
        tags: args.tag as string[] | undefined,
        dueBefore: args.due_before as string | undefined,
        dueAfter: args.due_after as string | undefined,
        overdue: args.overdue as boolean | undefined,
        q: args.q as string | undefined,
        match: args.match as never,
      });
      if (outcome.kind === 'invalid_cursor') {
        return fromHttp(tool, problems.validation([{ path: '/query/cursor', message: outcome.message }], 'invalid_cursor'));
      }
      return result({ tasks: outcome.tasks, next_cursor: outcome.nextCursor ?? null });
    }
    case 'createTask': {
      const outcome = await service.create(userId, body<CreateInput>(), {
        idempotencyKey: args.idempotency_key as string | undefined,
        locationOf: (id) => `/api/tasks/${id}`,
      });
      if (outcome.kind === 'quota_exceeded') return fromHttp(tool, problems.quotaExceeded(outcome.max));
      if (outcome.kind === 'key_reused') return fromHttp(tool, problems.idempotencyKeyReused());
      if (outcome.kind === 'invalid') return fromHttp(tool, problems.validation(outcome.errors));
      return taskResult(outcome);
    }
    case 'getTask': {
      const outcome = await service.get(userId, taskId);
      if (outcome.kind === 'not_found') {
        caller.notFound(taskId);
        return fromHttp(tool, problems.taskNotFound(taskId));
      }
      return taskResult(outcome);
    }
    case 'replaceTask':
      return written(await service.replace(userId, taskId, body<ReplaceInput>(), writeOptions));
    case 'updateTask':
      return written(await service.update(userId, taskId, body<UpdateInput>(), writeOptions));
    case 'toggleTaskCompletion':
      return written(await service.setCompletion(userId, taskId, args.completed as boolean | undefined, writeOptions));
    case 'deleteTask': {
      const outcome = await service.remove(userId, taskId, ifMatch);
      if (outcome.kind !== 'deleted') return written(outcome as WriteOutcome);
      return result({ deleted: true, task_id: taskId });
    }
    case 'clearCompletedTasks':
      return result({ deleted: await service.clearCompleted(userId) });
    case 'getTaskStats': {
      const outcome = await service.stats(userId, args.tz as string);
      if (outcome.kind === 'unknown_time_zone') return fromHttp(tool, problems.unknownTimeZone());
      return result({ ...outcome.stats });
    }
    case 'updateTasks': {
      const input = body<BatchUpdateInput>();
      const outcome = await service.updateMany(userId, input, { idempotencyKey: args.idempotency_key as string | undefined });
      switch (outcome.kind) {
        case 'written':
          return result({ tasks: outcome.tasks });
        case 'not_found':
          caller.notFound(...outcome.ids);
          return fromHttp(tool, problems.tasksNotFound(outcome.ids, input.ids));
        case 'too_many_tags':
          return fromHttp(tool, problems.tooManyTags(outcome.ids, outcome.max));
        case 'tags_conflict':
          return fromHttp(tool, problems.tagsAddedAndRemoved(outcome.tags));
        case 'invalid':
          return fromHttp(tool, problems.validation(outcome.errors));
        case 'key_reused':
          return fromHttp(tool, problems.idempotencyKeyReused());
      }
      break;
    }
    case 'deleteTasks': {
      const { deleted, notFound } = await service.removeMany(userId, args.ids as number[]);
      if (notFound.length) caller.notFound(...notFound);
      return result({ deleted, not_found: notFound });
    }
    case 'listTags':
      return result({ tags: await service.tags(userId) });
    default:
      throw new Error(`no service call for the tool ${tool.name} (${tool.http.operationId})`);
  }
}
