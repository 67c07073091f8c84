ALTER TABLE tasks DROP CONSTRAINT tasks_due_at_range;
DROP TRIGGER tasks_release_count ON tasks;
DROP FUNCTION task_counts_release();
DROP TABLE task_counts;
