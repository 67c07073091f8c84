// Every response a test app sends, checked against the contract by the tests' own ajv (the one the
// conformance test uses), independent of the server's validator, which test apps run without, as
// production does: so the response path that ships is the one every HTTP test exercises, and none
// of its answers can stray from the contract unnoticed. What the app writes is recorded as it
// goes out (the app's response prototype's write and end, wrapped once per app); tests/setup.ts
// fails a test file whose apps sent anything the contract does not document.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';
import { checkResponse, operations, type Operation, UndocumentedResponse } from './contract.js';

/** What went wrong, one line per response, for tests/setup.ts to report. */
export const contractViolations: string[] = [];

// Templates with fewer parameters first: /api/tasks/stats is matched before /api/tasks/{taskId}.
const matchers = operations
  .map((o) => ({ o, re: new RegExp(`^${o.path.replace(/\{[^}]+\}/g, '[^/]+')}$`), params: (o.path.match(/\{/g) ?? []).length }))
  .sort((a, b) => a.params - b.params);

/**
 * The operations a request is for: those of the most specific path template it matches (as the
 * router picks `/api/tasks/stats` over `/api/tasks/{taskId}` whatever the method), with its method.
 */
function operationsFor(method: string, path: string): Operation[] {
  const matching = matchers.filter(({ re }) => re.test(path));
  if (matching.length === 0) return [];
  const fewest = matching[0]!.params;
  return matching.filter((m) => m.params === fewest && m.o.method === method.toLowerCase()).map(({ o }) => o);
}

function check(req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, body: Buffer): void {
  if (req.method === 'HEAD' || res.getHeader('content-encoding') !== undefined) return;
  const path = (req.originalUrl ?? req.url ?? '').split('?')[0]!;
  const candidates = operationsFor(req.method ?? 'GET', path);
  // A path the contract has no operation for (a 404 or 405 of the app's own) has nothing to check.
  if (candidates.length === 0) return;
  const headers = Object.fromEntries(Object.entries(res.getHeaders()).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
  const response = { status: res.statusCode, headers, text: body.toString('utf8') };
  const failures: string[] = [];
  for (const o of candidates) {
    try {
      checkResponse(o, response as never);
      return;
    } catch (err) {
      failures.push(err instanceof UndocumentedResponse ? err.message : `${o.id}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  contractViolations.push(`${req.method} ${path} → ${res.statusCode}: ${failures.join(' | ')}`);
}

const instrumented = new WeakSet<object>();

/** Records what the app's responses write and checks each against the contract when it ends. */
export function checkShippedResponses(app: Express): void {
  const proto = app.response as ServerResponse;
  if (instrumented.has(proto)) return;
  instrumented.add(proto);
  const chunks = new WeakMap<ServerResponse, Buffer[]>();
  const keep = (res: ServerResponse, chunk: unknown, encoding: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const list = chunks.get(res) ?? [];
    list.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
    );
    chunks.set(res, list);
  };
  const write = proto.write;
  const end = proto.end;
  proto.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    keep(this, chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  proto.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    keep(this, chunk, rest[0]);
    const req = (this as ServerResponse & { req?: IncomingMessage }).req;
    if (req) {
      try {
        check(req, this, Buffer.concat(chunks.get(this) ?? []));
      } catch (err) {
        contractViolations.push(`checking ${req.method} ${req.url}: ${(err as Error).message}`);
      }
    }
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
}
