-- Per-user task counts, for the quota on creates (TASKS_PER_USER_MAX): a create claims a slot by
-- raising its user's count while the count is under the quota, in the same statement that inserts
-- the task (src/tasks/queries.ts). The claim locks the user's row, so concurrent creates of one
-- user are counted one after another and never pass the quota together. Deletes give slots back.
CREATE TABLE task_counts (
  user_id text    PRIMARY KEY,
  tasks   integer NOT NULL CHECK (tasks >= 0)
);

INSERT INTO task_counts (user_id, tasks) SELECT user_id, count(*) FROM tasks GROUP BY user_id;

-- A user whose last task goes leaves no row behind (the table holds only users who have tasks).
-- Two statements: the second sees the first's result even when a concurrent delete of the same
-- user's tasks made the first wait and count from the other's result.
CREATE FUNCTION task_counts_release() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE task_counts c SET tasks = greatest(0, c.tasks - gone.n)
  FROM (SELECT user_id, count(*) AS n FROM deleted_tasks GROUP BY user_id) gone
  WHERE c.user_id = gone.user_id;
  DELETE FROM task_counts c WHERE c.tasks = 0 AND c.user_id IN (SELECT user_id FROM deleted_tasks);
  RETURN NULL;
END;
$$;

-- Once per statement: clearing a thousand completed tasks is one update per user, not a thousand.
CREATE TRIGGER tasks_release_count AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS deleted_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_release();

-- Due dates within the years RFC 3339 can write (the API refuses others before they get here;
-- this keeps any other writer to the same rule). A due date past it could only have come from
-- an offset pushing 9999-12-31 into year 10000: it is moved to the last instant of 9999.
UPDATE tasks SET due_at = '9999-12-31T23:59:59.999999Z' WHERE due_at > '9999-12-31T23:59:59.999999Z';
UPDATE tasks SET due_at = '0001-01-01T00:00:00Z' WHERE due_at < '0001-01-01T00:00:00Z';
ALTER TABLE tasks ADD CONSTRAINT tasks_due_at_range
  CHECK (due_at BETWEEN '0001-01-01T00:00:00Z' AND '9999-12-31T23:59:59.999999Z');
