DROP TABLE idempotency_keys;

CREATE OR REPLACE FUNCTION tasks_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.title, NEW.description, NEW.completed) IS DISTINCT FROM (OLD.title, OLD.description, OLD.completed) THEN
    NEW.updated_at := now();
  ELSE
    NEW.updated_at := OLD.updated_at;
  END IF;
  RETURN NEW;
END;
$$;

DROP INDEX tasks_search_idx;
DROP INDEX tasks_tags_idx;
DROP INDEX tasks_user_position_idx;
DROP INDEX tasks_user_priority_idx;
DROP INDEX tasks_user_due_idx;

ALTER TABLE tasks
  DROP COLUMN search,
  DROP COLUMN version,
  DROP COLUMN position,
  DROP COLUMN tags,
  DROP COLUMN priority,
  DROP COLUMN due_at;
