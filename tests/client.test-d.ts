// Type-level tests for the SDK, run by `npm test` (vitest typecheck mode, which runs tsc over this
// file): a wrong call that compiles (an expect-error directive meeting no error) or a result type
// that drifts from the contract fails the run.
import { describe, expectTypeOf, it } from 'vitest';
import { createTodoClient, type ProblemCode, type Task, type TodoApiError } from '../packages/client/src/index.js';

const client = createTodoClient({ baseUrl: 'http://localhost:8000', getToken: () => 'token' });

// Never called: these lines exist to be compiled.
export function wrongCallsDoNotCompile() {
  // @ts-expect-error title must be a string
  void client.createTask({ title: 42 });
  // @ts-expect-error a misspelled field
  void client.createTask({ titel: 'Buy milk' });
  // @ts-expect-error title is required to create
  void client.createTask({ description: 'no title' });
  // @ts-expect-error completed is a boolean
  void client.updateTask(1, { completed: 'yes' });
  // @ts-expect-error status is all | pending | completed
  void client.listTasks({ status: 'done' });
  // @ts-expect-error task ids are numbers
  void client.getTask('42');
  // @ts-expect-error no such path in the contract
  void client.raw.GET('/api/task');
  // @ts-expect-error priority is none | low | medium | high
  void client.createTask({ title: 'x', priority: 'urgent' });
  // @ts-expect-error tags are a list of strings
  void client.updateTask(1, { tags: 'home' });
  // @ts-expect-error no such sort
  void client.listTasks({ sort: 'owner' });
  // @ts-expect-error the ETag comes before the body
  void client.updateTaskIfMatch(1, { title: 'x' });
  // @ts-expect-error the owner is never part of a task
  void client.getTask(1).then((t) => t.user_id);
}

// A code the contract does not list cannot be compared against: a frontend switch is checked.
export function unknownCodesDoNotCompile(err: TodoApiError) {
  // @ts-expect-error no such problem code in the contract
  return err.code === 'task_missing';
}

describe('SDK types', () => {
  it('results are the contract’s Task', () => {
    expectTypeOf(client.getTask).returns.resolves.toEqualTypeOf<Task>();
    expectTypeOf(client.createTask).parameter(0).toHaveProperty('title').toEqualTypeOf<string>();
    expectTypeOf<Task['description']>().toEqualTypeOf<string | null>();
    expectTypeOf<Task['id']>().toEqualTypeOf<number>();
    expectTypeOf<Task['tags']>().toEqualTypeOf<string[]>();
    expectTypeOf<Task['due_at']>().toEqualTypeOf<string | null>();
    expectTypeOf(client.getTaskStats).returns.resolves.toHaveProperty('due_today').toEqualTypeOf<number>();
    expectTypeOf<TodoApiError['errors']>().items.toHaveProperty('path').toEqualTypeOf<string>();
    expectTypeOf<TodoApiError['code']>().toEqualTypeOf<ProblemCode | 'unknown_error'>();
    expectTypeOf<'quota_exceeded'>().toMatchTypeOf<ProblemCode>();
  });
});
