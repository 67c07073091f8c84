// The breaking-change guard, on the real contract with deliberate changes applied to a copy.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without type declarations
import { checkBreaking, findBreakingChanges } from '../scripts/check-breaking.mjs';

const current = JSON.parse(readFileSync(new URL('../generated/openapi.json', import.meta.url), 'utf8'));
const released = JSON.parse(readFileSync(new URL('../openapi/released.json', import.meta.url), 'utf8'));
const copy = () => structuredClone(current);

describe('breaking-change guard', () => {
  it('finds nothing between the released contract and the current one', () => {
    expect(findBreakingChanges(released, current)).toEqual([]);
  });

  it('finds nothing between contract 1.0 and the current one: 1.1 only added', () => {
    const v1 = JSON.parse(readFileSync(new URL('./fixtures/contract-1.0.0.json', import.meta.url), 'utf8'));
    expect(v1.info.version).toBe('1.0.0');
    expect(current.info.version).toMatch(/^1\./);
    expect(findBreakingChanges(v1, current)).toEqual([]);
  });

  it('accepts additions: a new optional field, a new operation, a new response field', () => {
    const next = copy();
    next.components.schemas.TaskCreate.properties.priority = { type: 'string' };
    next.components.schemas.Task.properties.priority = { type: 'string' };
    next.paths['/api/tasks/archive'] = { get: { operationId: 'archive', responses: { 200: { description: 'ok' } } } };
    expect(findBreakingChanges(current, next)).toEqual([]);
  });

  it('reports a removed operation', () => {
    const next = copy();
    delete next.paths['/api/tasks/{taskId}'].delete;
    expect(findBreakingChanges(current, next)).toEqual(['DELETE /api/tasks/{taskId}: operation removed']);
  });

  it('reports removed and retyped response fields', () => {
    const next = copy();
    delete next.components.schemas.Task.properties.description;
    next.components.schemas.Task.properties.completed = { type: 'string' };
    const changes = findBreakingChanges(current, next);
    expect(changes).toContain('GET /api/tasks/{taskId} 200 body.description: removed from the response');
    expect(changes).toContain('GET /api/tasks/{taskId} 200 body.completed: type changed from boolean to string');
    expect(changes).toContain('GET /api/tasks 200 body[].completed: type changed from boolean to string');
  });

  it('reports new required request fields and parameters', () => {
    const next = copy();
    next.components.schemas.TaskCreate.required = ['title', 'priority'];
    next.paths['/api/tasks'].get.parameters.push({ name: 'tenant', in: 'query', required: true, schema: { type: 'string' } });
    const changes = findBreakingChanges(current, next);
    expect(changes).toContain('POST /api/tasks: request field "priority" is newly required');
    expect(changes).toContain('GET /api/tasks: query parameter "tenant" is newly required');
  });

  it('allows breaking changes only with a major version bump', () => {
    const next = copy();
    delete next.paths['/api/tasks'].post;
    expect(checkBreaking(current, next).allowed).toBe(false);
    next.info.version = '2.0.0';
    expect(checkBreaking(current, next)).toEqual({ changes: ['POST /api/tasks: operation removed'], allowed: true });
  });
});
