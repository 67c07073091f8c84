// The MCP tools, derived from the bundled contract at build time (`npm run generate` writes
// generated/mcp-tools.json; CI checks it is current). One tool per task operation of /api/tasks…:
// its name from the operationId in snake_case, its description from the summary and description,
// its input schema from the operation's parameters and body (JSON Schema, every constraint kept),
// its output schema from the success response, its annotations from the HTTP method. Beside each
// tool, `http` names its REST operation and which arguments are its parameters and body fields.

/** Operations of /api/tasks… that are not tools, and why (checked: each must exist). */
export const EXCLUDED = {};

/** Parameters that are not tool arguments, and why. */
const EXCLUDED_PARAMETERS = {
  'If-None-Match': 'a cache validator: a 304 has no task to return, and a model keeps no HTTP cache',
};

const snake = (name) =>
  name
    .replace(/-/g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();

/** What a `$ref` points at in the bundle, or the node itself. */
const resolve = (node, spec) =>
  node?.$ref
    ? node.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce((n, k) => n[k], spec)
    : node;

/** OpenAPI 3.0 schema → JSON Schema (2020-12 subset): $refs inlined, nullable as a null type, examples and x- keys dropped. */
function jsonSchema(schema, spec) {
  if (Array.isArray(schema)) return schema.map((s) => jsonSchema(s, spec));
  if (!schema || typeof schema !== 'object') return schema;
  if (schema.$ref) return jsonSchema(resolve(schema, spec), spec);
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'example' || key === 'examples' || key === 'nullable' || key.startsWith('x-')) continue;
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSchema(v, spec)]));
    else if (typeof value === 'object' && value !== null && key !== 'enum' && key !== 'required') out[key] = jsonSchema(value, spec);
    else out[key] = value;
  }
  if (schema.nullable) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

const ANNOTATIONS = {
  get: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  post: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  put: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  patch: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  delete: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
};

/** What a successful call returns, as an object (MCP's structuredContent is always one). */
function output(op, spec) {
  const [, response] = Object.entries(op.responses).find(([code]) => /^2/.test(code));
  const resolved = resolve(response, spec);
  const schema = resolved.content?.['application/json']?.schema && jsonSchema(resolved.content['application/json'].schema, spec);
  if (!schema) {
    // 204: the task is gone.
    return {
      result: 'deleted',
      schema: {
        type: 'object',
        required: ['deleted', 'task_id'],
        additionalProperties: false,
        properties: { deleted: { type: 'boolean', const: true }, task_id: { type: 'integer', description: 'The deleted task.' } },
      },
    };
  }
  if (schema.type === 'array') {
    return {
      result: 'list',
      schema: {
        type: 'object',
        required: ['tasks', 'next_cursor'],
        additionalProperties: false,
        properties: {
          tasks: schema,
          next_cursor: {
            type: ['string', 'null'],
            description: 'Pass as `cursor`, with the same other arguments, for the next page; null on the last page.',
          },
        },
      },
    };
  }
  if (resolved.headers?.ETag) {
    return {
      result: 'task',
      schema: {
        type: 'object',
        required: ['task', 'etag'],
        additionalProperties: false,
        properties: {
          task: schema,
          etag: {
            type: 'string',
            description: "The task's version: pass it as `if_match` to change the task only if no one else has since.",
          },
        },
      },
    };
  }
  return { result: 'object', schema };
}

export function mcpTools(spec) {
  const tools = [];
  const seen = new Set();
  for (const [path, item] of Object.entries(spec.paths)) {
    if (!path.startsWith('/api/tasks')) continue;
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      seen.add(op.operationId);
      if (EXCLUDED[op.operationId]) continue;
      const properties = {};
      const required = [];
      const params = {};
      const fixed = {};
      for (const p of [...(item.parameters ?? []), ...(op.parameters ?? [])].map((x) => resolve(x, spec))) {
        if (EXCLUDED_PARAMETERS[p.name]) continue;
        const schema = jsonSchema(p.schema, spec);
        // A required parameter with one possible value (clearing takes status=completed only) is
        // the tool's meaning, not a choice: it is sent for the model.
        if (p.required && schema.enum?.length === 1) {
          fixed[p.name] = schema.enum[0];
          continue;
        }
        const arg = snake(p.name);
        if (properties[arg]) throw new Error(`${op.operationId}: argument ${arg} twice`);
        properties[arg] = { ...schema, ...(p.description ? { description: p.description.trim() } : {}) };
        if (p.required) required.push(arg);
        params[arg] = { in: p.in, name: p.name };
      }
      let body;
      if (op.requestBody) {
        const schema = jsonSchema(resolve(op.requestBody, spec).content['application/json'].schema, spec);
        body = Object.keys(schema.properties);
        for (const [field, fieldSchema] of Object.entries(schema.properties)) {
          if (properties[field]) throw new Error(`${op.operationId}: body field ${field} collides with a parameter`);
          properties[field] = fieldSchema;
        }
        if (resolve(op.requestBody, spec).required) required.push(...(schema.required ?? []));
      }
      const { result, schema: outputSchema } = output(op, spec);
      // The REST description speaks of HTTP; what differs for a tool is said after it.
      const asTool = {
        list: 'As a tool, the answer is `{tasks, next_cursor}`: pass `next_cursor` back as `cursor`, with the same other arguments, for the next page.',
        task: 'As a tool, the answer is `{task, etag}`; pass `etag` as `if_match` to change the task only if no one has since.',
        deleted: 'As a tool, the answer is `{deleted: true, task_id}`.',
        object: '',
      }[result];
      tools.push({
        name: snake(op.operationId),
        title: op.summary,
        description: [`${op.summary}.`, (op.description ?? '').trim(), asTool].filter(Boolean).join('\n\n'),
        inputSchema: { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false },
        outputSchema,
        annotations: { title: op.summary, ...ANNOTATIONS[method] },
        http: { operationId: op.operationId, method: method.toUpperCase(), path, params, body: body ?? null, fixed, result },
      });
    }
  }
  for (const id of Object.keys(EXCLUDED)) if (!seen.has(id)) throw new Error(`excluded operation ${id} is not in the contract`);
  return tools;
}
