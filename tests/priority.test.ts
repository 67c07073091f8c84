// The stored priority is a table of its own (src/tasks/queries.ts), not the index of a value in the
// contract's enum: this checks the table names exactly the contract's values, lowest first, each
// with its own stored number within what migration 002's CHECK allows; and that what a client
// sends is what the database holds and gives back, on the database this run uses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRIORITIES, STORED_PRIORITY } from '../src/tasks/queries.js';
import { spec } from './helpers/contract.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';
import * as queries from '../src/tasks/queries.js';

describe(`stored priorities (${dbKind})`, () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it("maps exactly the contract's values, in its order, to distinct numbers 0–3", () => {
    const contractEnum = (spec.components.schemas.TaskPriority as { enum: string[] }).enum;
    expect(Object.keys(STORED_PRIORITY).sort()).toEqual([...contractEnum].sort());
    expect(PRIORITIES).toEqual(contractEnum);
    const stored = contractEnum.map((p) => STORED_PRIORITY[p as keyof typeof STORED_PRIORITY]);
    // Ascending in the contract's order: sorting by the stored number sorts as the contract says.
    expect(stored).toEqual([...stored].sort((a, b) => a - b));
    expect(new Set(stored).size).toBe(stored.length);
    for (const n of stored) expect(n >= 0 && n <= 3).toBe(true);
  });

  it('stores each priority as its number, and reads it back as its name', async () => {
    const user = 'priority-user';
    for (const priority of PRIORITIES) {
      const created = await queries.createTask(
        database.db,
        user,
        { title: priority, description: null, completed: false, dueAt: null, priority, tags: [], position: undefined },
        100,
      );
      expect(created?.task.priority).toBe(priority);
      const { rows } = await database.db.query<{ priority: number }>('SELECT priority FROM tasks WHERE id = $1', [created!.task.id]);
      expect(rows[0]!.priority).toBe(STORED_PRIORITY[priority]);
    }
  });
});
