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

let loaded: Contract | undefined;

/** The same contract for every caller (the server, its app, the warm-up's copy): nobody changes it,
 * and the validator is handed a copy of its own. */
export function loadContract(): Contract {
  if (!loaded) {
    const json = readFileSync(bundledSpecPath, 'utf8');
    loaded = { json, yaml: readFileSync(bundledYamlPath, 'utf8'), document: JSON.parse(json) as Record<string, unknown> };
  }
  return loaded;
}

/** The values of one of the contract's enum schemas, in the contract's order. */
export function enumOf<T extends string>(schema: string): readonly T[] {
  const document = JSON.parse(readFileSync(bundledSpecPath, 'utf8')) as { components: { schemas: Record<string, { enum?: T[] }> } };
  const values = document.components.schemas[schema]?.enum;
  if (!values) throw new Error(`the contract has no enum schema ${schema}`);
  return values;
}

export type OperationId = keyof operations;

type JsonContent<T> = T extends { content: { 'application/json': infer C } } ? C : never;

export type Body<Op extends OperationId> = operations[Op] extends { requestBody?: infer B } ? JsonContent<NonNullable<B>> : never;
export type Query<Op extends OperationId> = NonNullable<operations[Op]['parameters']['query']>;
/**
 * A request part as a handler sees it: the validator (ajv's useDefaults) has filled in each of the
 * named fields the contract gives a `default`, so they are never absent.
 */
export type Defaulted<T, K extends keyof T> = T & { [P in K]-?: Exclude<T[P], undefined> };

export type Json<Op extends OperationId, Status extends keyof operations[Op]['responses']> = JsonContent<
  operations[Op]['responses'][Status]
>;
