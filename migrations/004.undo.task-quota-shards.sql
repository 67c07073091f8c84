CREATE OR REPLACE FUNCTION task_counts_release() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE task_counts c SET tasks = greatest(0, c.tasks - gone.n)
  FROM (SELECT user_id, count(*) AS n FROM deleted_tasks GROUP BY user_id) gone
  WHERE c.user_id = gone.user_id;
  DELETE FROM task_counts c WHERE c.tasks = 0 AND c.user_id IN (SELECT user_id FROM deleted_tasks);
  RETURN NULL;
END;
$$;
DROP FUNCTION task_quota_lock_shared(text);
DROP FUNCTION task_quota_lock(text);
LOCK TABLE task_counts;
CREATE TEMPORARY TABLE task_counts_folded ON COMMIT DROP AS
  SELECT user_id, sum(tasks)::integer AS tasks FROM task_counts GROUP BY user_id HAVING sum(tasks) > 0;
TRUNCATE task_counts;
ALTER TABLE task_counts DROP CONSTRAINT task_counts_pkey, DROP COLUMN shard, ADD PRIMARY KEY (user_id);
INSERT INTO task_counts (user_id, tasks) SELECT user_id, tasks FROM task_counts_folded;
