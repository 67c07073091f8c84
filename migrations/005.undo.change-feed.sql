DROP TABLE event_tickets;
DROP TABLE change_horizons;
DROP TRIGGER tasks_leave_tombstones ON tasks;
DROP FUNCTION tasks_leave_tombstones();
DROP TABLE task_tombstones;
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
DROP INDEX tasks_user_change_idx;
ALTER TABLE tasks DROP COLUMN change_xid, DROP COLUMN change_seq;
DROP SEQUENCE task_change_seq;
