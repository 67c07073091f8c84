// The bundled contract as data, and a check of one HTTP response against it with an ajv of our own
// (independent of the server's validator): status documented, media type, required headers, body.
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type request from 'supertest';
import { expect } from 'vitest';

// biome-ignore lint/suspicious/noExplicitAny: walks arbitrary JSON documents
export type Json = Record<string, any>;
export const spec: Json = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

export function deref(obj: Json): Json {
  let o = obj;
  while (o && typeof o.$ref === 'string') {
    o = o.$ref
      .slice(2)
      .split('/')
      .map((p: string) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((acc: Json, key: string) => acc[key], spec);
  }
  return o;
}

export interface Operation {
  id: string;
  method: (typeof METHODS)[number];
  path: string;
  op: Json;
  statuses: string[];
  userScoped: boolean;
  hasBody: boolean;
  bodySchemaPointer: string | undefined;
}

export const operations: Operation[] = Object.entries(spec.paths as Json).flatMap(([p, item]) =>
  METHODS.filter((m) => item[m]).map((method) => {
    const op = item[method];
    return {
      id: op.operationId,
      method,
      path: p,
      op,
      statuses: Object.keys(op.responses),
      userScoped: p.includes('{userId}'),
      hasBody: Boolean(op.requestBody),
      bodySchemaPointer: op.requestBody
        ? `#/paths/${p.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`
        : undefined,
    };
  }),
);

// An ajv of our own over the whole document (OpenAPI 3.0 schemas: `nullable`, `example` allowed).
export const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv, { mode: 'full' });
ajv.addSchema(spec, 'spec');
const compiled = new Map<string, ValidateFunction>();
export function validatorFor(pointer: string): ValidateFunction {
  if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: `spec${pointer}` }));
  return compiled.get(pointer)!;
}

export class UndocumentedResponse extends Error {}

export function operationById(id: string): Operation {
  const o = operations.find((op) => op.id === id);
  if (!o) throw new Error(`no operation ${id} in the contract`);
  return o;
}

export function checkResponse(o: Operation, res: request.Response): void {
  const status = String(res.status);
  const documented = o.op.responses[status];
  if (!documented)
    throw new UndocumentedResponse(`${o.id} answered ${status}, which the contract does not document: ${res.text.slice(0, 200)}`);
  const response = deref(documented);
  for (const [name, header] of Object.entries((response.headers ?? {}) as Json)) {
    const h = deref(header);
    const value = res.headers[name.toLowerCase()] as string | undefined;
    if (h.required) expect(value, `${o.id} ${status}: header ${name}`).toBeDefined();
    if (value !== undefined) {
      const typed = h.schema?.type === 'integer' ? Number(value) : value;
      const v = ajv.compile(h.schema ?? {});
      expect(v(typed), `${o.id} ${status}: header ${name}=${value}`).toBe(true);
    }
  }
  const content = (response.content ?? {}) as Json;
  const mediaTypes = Object.keys(content);
  if (mediaTypes.length === 0) {
    expect(res.text ?? '', `${o.id} ${status}: no body documented`).toBe('');
    return;
  }
  const type = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  expect(mediaTypes, `${o.id} ${status}: content-type ${type}`).toContain(type);
  if (type.endsWith('json')) {
    const pointer = `#/paths/${o.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${o.method}/responses/${status}`;
    const schemaPointer = documented.$ref
      ? `${documented.$ref}/content/${type.replace('/', '~1')}/schema`
      : `${pointer}/content/${type.replace('/', '~1')}/schema`;
    const validate = validatorFor(schemaPointer);
    const body = JSON.parse(res.text);
    expect(validate(body), `${o.id} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  }
}
