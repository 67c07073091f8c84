// A tool call's arguments checked against the tool's input schema (generated from the contract:
// every constraint of the REST operation's parameters and body), with the contract's defaults
// filled in, and then against what the contract's schemas cannot say and REST checks after its
// validator too (src/http/storable-input.ts): well-formed Unicode, instants within years
// 0001–9999. Each rejected argument is named, in the same words REST uses for the same field.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { loadContract } from '../http/contract.js';
import { humanMessage, mergeByField } from '../http/field-messages.js';
import { INSTANT_FIELDS, instantProblem, malformedStrings } from '../http/storable-input.js';
import type { Tool } from './tools.js';

export interface ArgumentError {
  /** The argument, and where inside it: `title`, `tags/1`. */
  path: string;
  message: string;
}

export type CheckedArguments = { ok: true; args: Record<string, unknown> } | { ok: false; errors: ArgumentError[] };

/** Arguments that are instants the database stores or compares with: REST's body and query fields. */
const INSTANT_ARGUMENTS: readonly string[] = [...INSTANT_FIELDS.body, ...INSTANT_FIELDS.query];

/**
 * The contract's `x-pattern-message` for each pattern it uses (the generated tool schemas leave
 * x- keys out to stay small): a pattern's explanation is written once, beside it in the contract.
 */
function patternMessages(): Map<string, string> {
  const messages = new Map<string, string>();
  const walk = (node: unknown) => {
    if (Array.isArray(node)) for (const n of node) walk(n);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.pattern === 'string' && typeof o['x-pattern-message'] === 'string') messages.set(o.pattern, o['x-pattern-message']);
      for (const v of Object.values(o)) walk(v);
    }
  };
  walk(loadContract().document);
  return messages;
}

export function argumentChecker(tools: readonly Tool[]): (tool: Tool, args: Record<string, unknown>) => CheckedArguments {
  const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false });
  addFormats.default(ajv, { mode: 'full' });
  const validators = new Map<string, ValidateFunction>(tools.map((t) => [t.name, ajv.compile(t.http.arguments)]));
  const explained = patternMessages();

  /** ajv's enum message names no value; REST's validator names them all. */
  const messageOf = (e: ErrorObject) =>
    e.keyword === 'enum'
      ? `must be equal to one of the allowed values: ${(e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ')}`
      : (e.message ?? 'is not valid');
  /** What a message needs of its schema: for a pattern, the contract's explanation of it. */
  const schemaOf = (e: ErrorObject) => {
    const pattern = e.keyword === 'pattern' ? (e.params as { pattern?: string }).pattern : undefined;
    return pattern && explained.has(pattern) ? { 'x-pattern-message': explained.get(pattern)! } : undefined;
  };
  const pathOf = (e: ErrorObject) => {
    const at = e.instancePath.replace(/^\//, '');
    if (e.keyword === 'required') return [at, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('/');
    return at;
  };

  return (tool, given) => {
    // A copy: ajv fills in defaults, and the caller's object stays as it was sent.
    const args = structuredClone(given);
    const validate = validators.get(tool.name)!;
    if (!validate(args)) {
      const errors = (validate.errors ?? [])
        // oneOf/anyOf/if summaries repeat what their branches said.
        .filter((e) => !['oneOf', 'anyOf', 'if'].includes(e.keyword))
        .map((e) => ({ path: pathOf(e), message: humanMessage(messageOf(e), schemaOf(e)) }));
      return { ok: false, errors: mergeByField(errors) };
    }
    const errors: ArgumentError[] = [];
    for (const [name, value] of Object.entries(args)) malformedStrings(value, name, errors);
    for (const name of INSTANT_ARGUMENTS) {
      const value = args[name];
      const problem = typeof value === 'string' ? instantProblem(value) : undefined;
      if (problem) errors.push({ path: name, message: problem });
    }
    return errors.length ? { ok: false, errors: mergeByField(errors) } : { ok: true, args };
  };
}
