-- Richer tasks (contract 1.1): due dates, priorities, tags, manual order, full-text search, a
-- version for ETags, and stored responses for Idempotency-Key. Additive: every existing row gets
-- defaults, and statements written for 001 keep working.
ALTER TABLE tasks
  ADD COLUMN due_at   timestamptz,
  -- 0 none, 1 low, 2 medium, 3 high: stored as a number so it sorts by importance.
  ADD COLUMN priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
  ADD COLUMN tags     text[]   NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
  -- Manual order: a client moves a task between two others by giving it a position between
  -- theirs, so nothing else is renumbered.
  ADD COLUMN position double precision NOT NULL DEFAULT 0 CHECK (position BETWEEN -1e15 AND 1e15),
  -- Bumped by every real change; the ETag of the task.
  ADD COLUMN version  integer  NOT NULL DEFAULT 1,
  -- 'simple': no stemming and no stop words, so search works the same in any language.
  ADD COLUMN search   tsvector GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || coalesce(description, ''))) STORED;

-- Existing tasks keep their order under the new sort: oldest first, one slot apart.
UPDATE tasks t SET position = n.rn * 1024
FROM (SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY created_at, id) AS rn FROM tasks) n
WHERE t.id = n.id;

-- The new sort keys, each like the ones in 001: led by user_id, ending in id, so every page of any
-- sort is one index range scan. Tasks without a due date sort as if due at infinity (last when
-- ascending, first when descending, as PostgreSQL orders NULLs).
CREATE INDEX tasks_user_due_idx      ON tasks (user_id, (coalesce(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_user_priority_idx ON tasks (user_id, priority, id);
CREATE INDEX tasks_user_position_idx ON tasks (user_id, position, id);
CREATE INDEX tasks_tags_idx          ON tasks USING gin (tags);
CREATE INDEX tasks_search_idx        ON tasks USING gin (search);

CREATE OR REPLACE FUNCTION tasks_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.title, NEW.description, NEW.completed, NEW.due_at, NEW.priority, NEW.tags, NEW.position)
     IS DISTINCT FROM (OLD.title, OLD.description, OLD.completed, OLD.due_at, OLD.priority, OLD.tags, OLD.position) THEN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
  ELSE
    NEW.updated_at := OLD.updated_at;
    NEW.version := OLD.version;
  END IF;
  RETURN NEW;
END;
$$;

-- A create sent with an Idempotency-Key, remembered for 24 hours: a retry with the same key and
-- body gets the original response back instead of a second task.
CREATE TABLE idempotency_keys (
  user_id      text        NOT NULL,
  key          text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
  request_hash text        NOT NULL,
  status       smallint    NOT NULL,
  etag         text        NOT NULL,
  location     text        NOT NULL,
  body         jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
