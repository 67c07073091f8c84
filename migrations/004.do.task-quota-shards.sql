-- The per-user quota without making one user's creates wait for each other. Under 003 every create
-- raised its user's one count row and held that row's lock until its commit was flushed, so a
-- user's creates were committed one at a time. Now a user's count is spread over rows (shards): a
-- create raises the row of its server connection (src/tasks/queries.ts), and creates on other
-- connections do not wait for it. A create reads the sum without seeing the creates still in flight,
-- of which there are fewer than max_connections (+ max_prepared_transactions): while the sum it sees
-- is under the quota by at least that many, it cannot pass the quota whatever they do. Closer to the
-- quota a create counts exactly, alone: it takes its user's quota lock exclusively, which waits for
-- the creates in flight, each of which holds the same lock shared (task_quota_lock_shared) from
-- before it reads the sum until its commit.
ALTER TABLE task_counts ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE task_counts ALTER COLUMN shard DROP DEFAULT;
ALTER TABLE task_counts DROP CONSTRAINT task_counts_pkey, ADD PRIMARY KEY (user_id, shard);

-- The lock's key: the two-integer form, a keyspace apart from the migrations' one-bigint lock.
CREATE FUNCTION task_quota_lock(owner text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(1952541554, hashtext(owner)) $$;
CREATE FUNCTION task_quota_lock_shared(owner text) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock_shared(1952541554, hashtext(owner)) $$;

-- Deletes give slots back under the exclusive lock, so the sum they read is exact, and they fold
-- the user's rows into one (none when the last task goes: the table holds only users with tasks).
-- Users are locked in one order, so two deletes spanning the same users cannot deadlock.
CREATE OR REPLACE FUNCTION task_counts_release() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  gone record;
BEGIN
  FOR gone IN SELECT user_id, count(*)::integer AS n FROM deleted_tasks GROUP BY user_id ORDER BY user_id LOOP
    PERFORM task_quota_lock(gone.user_id);
    WITH folded AS (DELETE FROM task_counts WHERE user_id = gone.user_id RETURNING tasks)
    INSERT INTO task_counts (user_id, shard, tasks)
      SELECT gone.user_id, 0, left_over FROM (SELECT sum(tasks) - gone.n AS left_over FROM folded) f
      WHERE left_over > 0;
  END LOOP;
  RETURN NULL;
END;
$$;
