// The MCP tools, derived from the bundled contract at build time (`npm run generate` writes
// generated/mcp-tools.json; CI checks it is current). One tool per task operation of /api/tasks…:
// its name from the operationId in snake_case, its description from the summary and description,
// its input schema from the operation's parameters and body (JSON Schema, every constraint kept),
// its output schema from the success response, its annotations from the HTTP method. Beside each
// tool, `http` names its REST operation and which arguments are its parameters and body fields.

// Only /api/tasks… operations become tools. The webhook operations (/api/webhooks…) are not tools:
// registering one points this server's deliveries at a URL and answers with a signing secret shown
// once, which a model would carry into its context and transcript; an agent that wants changes
// pushed is better served by a person setting up the receiver, and reads tasks with list_tasks.

/** Operations of /api/tasks… that are not tools, and why (checked: each must exist). */
export const EXCLUDED = {
  listTaskChanges:
    'a sync protocol for clients that keep a copy of the tasks and apply changes to it in order; a model keeps no such copy and asks list_tasks for the tasks as they are (the event stream, /api/events, is no /api/tasks operation and no tool either: a tool call answers once, a stream never ends)',
};

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

/**
 * OpenAPI 3.0 schema → JSON Schema (2020-12 subset): $refs inlined, nullable as a null type,
 * examples and x- keys dropped. For an argument, a schema's `x-mcp-description` (written for a
 * tool caller, beside the contract's HTTP wording) stands in for its description, and array items
 * go without one (their array says it). For a result, descriptions go too: its shape is what a
 * client checks, and the tool's description already says what it returns.
 */
function jsonSchema(schema, spec, mode, inItems = false) {
  if (Array.isArray(schema)) return schema.map((s) => jsonSchema(s, spec, mode));
  if (!schema || typeof schema !== 'object') return schema;
  if (schema.$ref) return jsonSchema(resolve(schema, spec), spec, mode, inItems);
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'example' || key === 'examples' || key === 'nullable' || key.startsWith('x-')) continue;
    if (key === 'description') {
      if (mode === 'input' && !inItems) out.description = (schema['x-mcp-description'] ?? value).trim();
      continue;
    }
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSchema(v, spec, mode)]));
    else if (key === 'items') out.items = jsonSchema(value, spec, mode, true);
    else if (typeof value === 'object' && value !== null && key !== 'enum' && key !== 'required') out[key] = jsonSchema(value, spec, mode);
    else out[key] = value;
  }
  if (schema.nullable) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

/** A result's shape as a client checks it: types, names and values, without the input rules. */
const RESULT_KEYS = new Set(['type', 'format', 'enum', 'const', 'required', 'properties', 'items', 'anyOf']);
function resultShape(schema) {
  if (Array.isArray(schema)) return schema.map(resultShape);
  if (!schema || typeof schema !== 'object') return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (!RESULT_KEYS.has(key) || (key === 'format' && value !== 'date-time' && value !== 'date')) continue;
    out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resultShape(v)])) : resultShape(value);
  }
  return out;
}

/**
 * The arguments as a model is shown them: the checked schema less what costs tokens and tells a
 * model nothing its description does not (patterns, whose rule the description states; number
 * formats; bounds no one reaches). Calls are still checked against every constraint.
 */
function listed(schema) {
  if (Array.isArray(schema)) return schema.map(listed);
  if (!schema || typeof schema !== 'object') return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'pattern' || (key === 'format' && (value === 'int64' || value === 'double'))) continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(value) >= 1e15) continue;
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, listed(v)]));
    else out[key] = typeof value === 'object' && value !== null && key !== 'enum' && key !== 'required' ? listed(value) : value;
  }
  // A rule made only of patterns says nothing once they are gone.
  if (Array.isArray(out.allOf)) {
    out.allOf = out.allOf.filter((s) => Object.keys(s).length > 0);
    if (out.allOf.length === 0) delete out.allOf;
  }
  return out;
}

// Each hint only where it differs from MCP's default (readOnlyHint false, destructiveHint true,
// idempotentHint false, openWorldHint true); destructive and idempotent mean nothing for a read.
// An operation whose method says less than it does names its own (`x-mcp-annotations`).
const ANNOTATIONS = {
  get: { readOnlyHint: true, openWorldHint: false },
  post: { destructiveHint: false, openWorldHint: false },
  put: { destructiveHint: false, idempotentHint: true, openWorldHint: false },
  patch: { destructiveHint: false, openWorldHint: false },
  delete: { idempotentHint: true, openWorldHint: false },
};

/** What a successful call returns, as an object (MCP's structuredContent is always one). */
function output(op, spec) {
  const [, response] = Object.entries(op.responses).find(([code]) => /^2/.test(code));
  const resolved = resolve(response, spec);
  const schema =
    resolved.content?.['application/json']?.schema && resultShape(jsonSchema(resolved.content['application/json'].schema, spec, 'output'));
  if (!schema) {
    // 204: the task is gone.
    return {
      result: 'deleted',
      schema: {
        type: 'object',
        required: ['deleted', 'task_id'],
        additionalProperties: false,
        properties: { deleted: { type: 'boolean', const: true }, task_id: { type: 'integer' } },
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
          next_cursor: { type: ['string', 'null'] },
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
          etag: { type: 'string' },
        },
      },
    };
  }
  return { result: 'object', schema };
}

/**
 * Every result also says when it was made (`now`, the server's clock in RFC 3339 UTC), so a model
 * can resolve "tomorrow" or "overdue" without a clock of its own.
 */
function withNow({ result, schema }) {
  if (schema.type !== 'object' || !schema.properties || schema.properties.now) throw new Error(`a ${result} result cannot carry now`);
  return {
    result,
    schema: {
      ...schema,
      required: [...(schema.required ?? []), 'now'],
      properties: { ...schema.properties, now: { type: 'string', format: 'date-time' } },
    },
  };
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
        const schema = jsonSchema(p.schema, spec, 'input');
        // A required parameter with one possible value (clearing takes status=completed only) is
        // the tool's meaning, not a choice: it is sent for the model.
        if (p.required && schema.enum?.length === 1) {
          fixed[p.name] = schema.enum[0];
          continue;
        }
        const arg = snake(p.name);
        if (properties[arg]) throw new Error(`${op.operationId}: argument ${arg} twice`);
        const description = (p['x-mcp-description'] ?? p.description)?.trim();
        properties[arg] = { ...schema, ...(description ? { description } : {}) };
        if (p.required) required.push(arg);
        params[arg] = { in: p.in, name: p.name };
      }
      let body;
      if (op.requestBody) {
        const schema = jsonSchema(resolve(op.requestBody, spec).content['application/json'].schema, spec, 'input');
        body = Object.keys(schema.properties);
        for (const [field, fieldSchema] of Object.entries(schema.properties)) {
          if (properties[field]) throw new Error(`${op.operationId}: body field ${field} collides with a parameter`);
          properties[field] = fieldSchema;
        }
        if (resolve(op.requestBody, spec).required) required.push(...(schema.required ?? []));
      }
      const { result, schema: outputSchema } = withNow(output(op, spec));
      const argumentsSchema = { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false };
      // What a model reads is written for a tool caller, beside the REST wording (x-mcp-description).
      const description = op['x-mcp-description'];
      if (!description) throw new Error(`${op.operationId}: no x-mcp-description`);
      tools.push({
        name: snake(op.operationId),
        title: op.summary,
        description,
        inputSchema: listed(argumentsSchema),
        outputSchema,
        annotations: { ...ANNOTATIONS[method], ...op['x-mcp-annotations'] },
        http: {
          operationId: op.operationId,
          method: method.toUpperCase(),
          path,
          params,
          body: body ?? null,
          fixed,
          result,
          arguments: argumentsSchema,
        },
      });
    }
  }
  for (const id of Object.keys(EXCLUDED)) if (!seen.has(id)) throw new Error(`excluded operation ${id} is not in the contract`);
  return tools;
}
