// Keeping a list on screen current: a full sync, then live changes (the README's subscribe()).
import { applyChanges, createTodoClient, type Task } from '@todo-api/client';

declare const token: string;

const todo = createTodoClient({ baseUrl: 'http://localhost:8000', getToken: () => token });

export async function follow(render: (tasks: ReadonlyMap<number, Task>) => void): Promise<() => void> {
  const sub = todo.subscribe({ onSync: render, onChange: (_change, tasks) => render(tasks) });
  await sub.ready;
  return () => sub.close();
}

/** Or by hand: read the feed from a saved cursor, and keep the new one. */
export async function catchUp(copy: Map<number, Task>, saved: string | undefined): Promise<string | undefined> {
  let cursor = saved;
  for await (const page of todo.changes(saved)) {
    applyChanges(copy, page.changes);
    cursor = page.cursor;
  }
  return cursor;
}
