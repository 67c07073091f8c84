// What a frontend does with the SDK, as CI runs it from the packed tarball in a fresh project with
// no Node types (scripts/check-sdk-package.mjs): typechecked, bundled for the browser, then run
// against a live server. Throws on anything unexpected.
import { createTodoClient, TodoApiError, type Task, type TodoApiErrorCode } from '@todo-api/client';

export async function run(baseUrl: string, token: string): Promise<string[]> {
  const log: string[] = [];
  const client = createTodoClient({ baseUrl, getToken: () => token });

  // Create, then read every task back across pages of two.
  const created: Task[] = [];
  for (const title of ['one', 'two', 'three', 'four', 'five']) created.push(await client.createTask({ title, tags: ['sdk'] }));
  const all: Task[] = [];
  for await (const task of client.listAllTasks({ tag: ['sdk'], limit: 2, sort: 'created_at', order: 'asc' })) all.push(task);
  if (all.map((t) => t.title).join() !== 'one,two,three,four,five') throw new Error(`paging: ${all.map((t) => t.title).join()}`);
  log.push(`listed ${all.length} tasks in pages of 2`);

  // Update with an ETag; a stale ETag is refused with 412.
  const first = created[0]!;
  const read = await client.getTaskWithETag(first.id);
  if (!read) throw new Error('no task');
  const updated = await client.updateTaskIfMatch(first.id, read.etag, { title: 'one, edited', priority: 'high' });
  if (updated.task.priority !== 'high' || updated.etag === read.etag) throw new Error('update with ETag');
  try {
    await client.updateTaskIfMatch(first.id, read.etag, { title: 'lost update' });
    throw new Error('a stale ETag was accepted');
  } catch (err) {
    if (!(err instanceof TodoApiError) || err.code !== 'precondition_failed') throw err;
  }
  log.push('updated with an ETag; a stale one got 412');

  // A form with two bad fields gets both back, in words a person reads.
  try {
    // @ts-expect-error priority is none | low | medium | high: a wrong call does not compile
    await client.createTask({ title: '   ', priority: 'urgent' });
    throw new Error('an invalid task was created');
  } catch (err) {
    if (!(err instanceof TodoApiError)) throw err;
    const code: TodoApiErrorCode = err.code;
    if (code !== 'validation_failed') throw err;
    const fields = err.errors.map((e) => `${e.path} ${e.message}`);
    if (fields.length !== 2 || !fields.some((f) => f.startsWith('/body/title')) || !fields.some((f) => f.startsWith('/body/priority'))) {
      throw new Error(`field errors: ${fields.join('; ')}`);
    }
    log.push(`422 lists: ${fields.join('; ')}`);
  }
  return log;
}
