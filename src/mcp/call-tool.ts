// A tool call is the REST operation it was generated from, dispatched into this same app in
// process (src/mcp/self-dispatch.ts): the same validation, per-user limit, queries, idempotency, ETags and
// problems, with the caller's user already verified at /mcp. The answer becomes a tool result:
// structuredContent shaped as the tool's outputSchema and a one-line summary, or, for a problem,
// isError with its code, detail and each rejected field.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Caller, Dispatch } from './self-dispatch.js';
import type { Tool } from './tools.js';

interface Problem {
  code?: string;
  title?: string;
  detail?: string;
  errors?: { path: string; message: string }[];
}

function restRequest(tool: Tool, args: Record<string, unknown>) {
  const { http } = tool;
  let path = http.path;
  const query = new URLSearchParams(http.fixed);
  const headers: Record<string, string> = {};
  for (const [arg, value] of Object.entries(args)) {
    const target = http.params[arg];
    if (!target) continue;
    if (target.in === 'path') path = path.replace(`{${target.name}}`, encodeURIComponent(String(value)));
    else if (target.in === 'header') headers[target.name] = String(value);
    else for (const v of Array.isArray(value) ? value : [value]) query.append(target.name, String(v));
  }
  // Arguments that are neither parameters nor body fields go into the body when there is one, so
  // the contract refuses them by name (`is not a field of this request`), as REST does.
  const body = http.body ? Object.fromEntries(Object.entries(args).filter(([arg]) => !http.params[arg])) : undefined;
  const qs = query.toString();
  return { method: http.method, url: qs ? `${path}?${qs}` : path, headers, body };
}

/** A REST field's pointer (/body/title, /query/limit, /path/taskId) as the tool's argument name. */
function argumentPath(tool: Tool, pointer: string): string {
  const [, where, name, ...rest] = pointer.split('/');
  if (where === 'body' && name) return [name, ...rest].join('/');
  for (const [arg, p] of Object.entries(tool.http.params)) {
    const place = where === 'headers' ? 'header' : where;
    if (p.in === place && p.name.toLowerCase() === name?.toLowerCase()) return [arg, ...rest].join('/');
  }
  return pointer;
}

function problemResult(tool: Tool, status: number, raw: Problem): CallToolResult {
  const problem = { ...raw, ...(raw.errors ? { errors: raw.errors.map((e) => ({ ...e, path: argumentPath(tool, e.path) })) } : {}) };
  const fields = (problem.errors ?? []).map((e) => `\n- ${e.path || '(request)'}: ${e.message}`).join('');
  return {
    isError: true,
    content: [
      { type: 'text', text: `${status} ${problem.code ?? 'error'}: ${problem.detail ?? problem.title ?? 'the request failed'}${fields}` },
      { type: 'text', text: JSON.stringify({ status, code: problem.code, detail: problem.detail, errors: problem.errors }) },
    ],
  };
}

function successResult(tool: Tool, args: Record<string, unknown>, status: number, headers: Headers, payload: string): CallToolResult {
  const body: unknown = payload ? JSON.parse(payload) : undefined;
  let structured: Record<string, unknown>;
  let summary: string;
  switch (tool.http.result) {
    case 'list': {
      const link = /^<([^>]+)>; rel="next"$/.exec(headers.get('link') ?? '')?.[1];
      const next = link ? new URL(link, 'http://x').searchParams.get('cursor') : null;
      const tasks = body as unknown[];
      structured = { tasks, next_cursor: next };
      summary = `${tasks.length} task${tasks.length === 1 ? '' : 's'}${next ? '; more follow (pass next_cursor as cursor)' : ''}.`;
      break;
    }
    case 'task': {
      const task = body as { id: number; title: string; completed: boolean };
      structured = { task, etag: headers.get('etag') ?? '' };
      const replayed = headers.get('idempotent-replayed') === 'true' ? ' (replayed: created earlier with this idempotency key)' : '';
      summary = `${status === 201 ? 'Created' : 'Task'} #${task.id} "${task.title}", ${task.completed ? 'completed' : 'pending'}${replayed}.`;
      break;
    }
    case 'deleted':
      structured = { deleted: true, task_id: Number(args.task_id) };
      summary = `Deleted task #${String(args.task_id)}.`;
      break;
    default:
      structured = body as Record<string, unknown>;
      summary = JSON.stringify(body);
  }
  return { structuredContent: structured, content: [{ type: 'text', text: summary }] };
}

/** A task id as a path argument: a whole number from 1, as a JSON number or in plain decimal digits. */
const isTaskId = (value: unknown) =>
  (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) ||
  (typeof value === 'string' && /^[1-9]\d{0,15}$/.test(value) && Number(value) <= Number.MAX_SAFE_INTEGER);

// A header argument is sent as it is given: visible ASCII, spaces only between other characters
// (an HTTP client would trim them away, making " k" and "k" one idempotency key), no CR, LF or NUL.
const HEADER_VALUE = /^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/;

/** Why a header argument cannot be sent as it is, against the tool's schema for it; undefined when it can. */
function headerArgumentProblem(value: unknown, schema: { maxLength?: number; pattern?: string }): string | undefined {
  if (typeof value !== 'string') return 'must be text';
  if (schema.maxLength !== undefined && value.length > schema.maxLength) return `must be at most ${schema.maxLength} characters long`;
  if (!HEADER_VALUE.test(value) || (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value))) {
    return schema.pattern === undefined
      ? 'must be printable ASCII, without spaces at either end'
      : 'must be printable ASCII without spaces';
  }
  return undefined;
}

export async function callTool(dispatch: Dispatch, tool: Tool, args: Record<string, unknown>, caller: Caller): Promise<CallToolResult> {
  // An argument the tool does not have is refused by name, as the contract refuses unknown fields
  // (own properties only: `constructor` or `toString` are no arguments of any tool).
  const unknown = Object.keys(args).filter((arg) => !Object.hasOwn(tool.inputSchema.properties, arg));
  if (unknown.length) {
    return problemResult(tool, 422, {
      code: 'validation_failed',
      detail: `${tool.name} has no argument ${unknown.join(', ')}.`,
      errors: unknown.map((arg) => ({ path: arg, message: 'is not an argument of this tool' })),
    });
  }
  // Arguments that become part of the URL or a header are checked here, before any request is
  // made of them: a path argument names one task (never "stats", "." or another path), and a
  // header argument must be sendable exactly as given.
  const errors: { path: string; message: string }[] = [];
  for (const [arg, target] of Object.entries(tool.http.params)) {
    if (!Object.hasOwn(args, arg)) continue;
    if (target.in === 'path' && !isTaskId(args[arg])) errors.push({ path: arg, message: 'must be a task id: a whole number from 1' });
    if (target.in === 'header') {
      const message = headerArgumentProblem(args[arg], tool.inputSchema.properties[arg] as { maxLength?: number; pattern?: string });
      if (message) errors.push({ path: arg, message });
    }
  }
  if (errors.length) {
    return problemResult(tool, 422, {
      code: 'validation_failed',
      detail: `The request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}.`,
      errors,
    });
  }
  const res = await dispatch(restRequest(tool, args), caller);
  if (res.status >= 400) return problemResult(tool, res.status, res.text ? (JSON.parse(res.text) as Problem) : {});
  return successResult(tool, args, res.status, res.headers, res.text);
}
