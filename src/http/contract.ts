// The bundled contract, loaded once, and type helpers that key request and response shapes by
// operationId, so handlers are written against the generated types rather than by hand.
import { readFileSync } from 'node:fs';
import type { operations } from '../../generated/openapi.js';

export const bundledSpecPath = new URL('../../generated/openapi.json', import.meta.url);
const bundledYamlPath = new URL('../../generated/openapi.yaml', import.meta.url);

export interface Contract {
  /** The bundle as JSON and YAML text, served verbatim. */
  json: string;
  yaml: string;
  /** The parsed bundle, for the validator. */
  document: Record<string, unknown>;
}

export function loadContract(): Contract {
  const json = readFileSync(bundledSpecPath, 'utf8');
  return { json, yaml: readFileSync(bundledYamlPath, 'utf8'), document: JSON.parse(json) as Record<string, unknown> };
}

export type OperationId = keyof operations;

type JsonContent<T> = T extends { content: { 'application/json': infer C } } ? C : never;

export type Body<Op extends OperationId> = operations[Op] extends { requestBody?: infer B }
  ? JsonContent<NonNullable<B>>
  : never;
export type Query<Op extends OperationId> = NonNullable<operations[Op]['parameters']['query']>;
export type Json<Op extends OperationId, Status extends keyof operations[Op]['responses']> = JsonContent<
  operations[Op]['responses'][Status]
>;
