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

export async function callTool(dispatch: Dispatch, tool: Tool, args: Record<string, unknown>, caller: Caller): Promise<CallToolResult> {
  // An argument the tool does not have is refused by name, as the contract refuses unknown fields.
  const unknown = Object.keys(args).filter((arg) => !(arg in tool.inputSchema.properties));
  if (unknown.length) {
    return problemResult(tool, 422, {
      code: 'validation_failed',
      detail: `${tool.name} has no argument ${unknown.join(', ')}.`,
      errors: unknown.map((arg) => ({ path: arg, message: 'is not an argument of this tool' })),
    });
  }
  // A path argument names one resource: a value that is not a plain string or number, or that a
  // URL would read as `.` or `..`, would name another path (the list, say), so it is refused here.
  const unusable = Object.entries(tool.http.params)
    .filter(([arg, p]) => p.in === 'path' && arg in args)
    .filter(([arg]) => {
      const value = args[arg];
      return (typeof value !== 'string' && typeof value !== 'number') || /^(\.|%2e)*$/i.test(String(value));
    });
  if (unusable.length) {
    return problemResult(tool, 422, {
      code: 'validation_failed',
      detail: `${unusable.map(([arg]) => arg).join(', ')} must be a task id: a whole number from 1.`,
      errors: unusable.map(([arg]) => ({ path: arg, message: 'must be a task id: a whole number from 1' })),
    });
  }
  const res = await dispatch(restRequest(tool, args), caller);
  if (res.status >= 400) return problemResult(tool, res.status, res.text ? (JSON.parse(res.text) as Problem) : {});
  return successResult(tool, args, res.status, res.headers, res.text);
}
