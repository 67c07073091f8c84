DROP TRIGGER tasks_schedule_reminders_update ON tasks;
DROP TRIGGER tasks_schedule_reminders_insert ON tasks;
DROP FUNCTION tasks_schedule_reminders();
DROP TABLE reminder_schedule;
DELETE FROM task_events WHERE kind <> 'delete';
DROP INDEX task_events_event_id_idx;
ALTER TABLE task_events
  DROP COLUMN kind, DROP COLUMN event_id, DROP COLUMN payload,
  ALTER COLUMN change_xid DROP DEFAULT, ALTER COLUMN change_seq DROP DEFAULT;
ALTER INDEX task_events_happened_idx RENAME TO task_tombstones_deleted_idx;
ALTER TABLE task_events RENAME COLUMN happened_at TO deleted_at;
ALTER TABLE task_events RENAME TO task_tombstones;
CREATE OR REPLACE FUNCTION tasks_leave_tombstones() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_tombstones (user_id, task_id, change_xid, change_seq)
    SELECT user_id, id, pg_current_xact_id(), nextval('task_change_seq') FROM gone_tasks;
  RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION tasks_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.title, NEW.description, NEW.completed, NEW.due_at, NEW.priority, NEW.tags, NEW.position)
     IS DISTINCT FROM (OLD.title, OLD.description, OLD.completed, OLD.due_at, OLD.priority, OLD.tags, OLD.position) THEN
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    NEW.change_xid := pg_current_xact_id();
    NEW.change_seq := nextval('task_change_seq');
  ELSE
    NEW.updated_at := OLD.updated_at;
    NEW.version := OLD.version;
    NEW.change_xid := OLD.change_xid;
    NEW.change_seq := OLD.change_seq;
  END IF;
  RETURN NEW;
END;
$$;
DROP TABLE task_occurrences;
ALTER TABLE tasks
  DROP CONSTRAINT tasks_recurrence_due,
  DROP COLUMN recurrence, DROP COLUMN recurrence_anchor, DROP COLUMN occurrence, DROP COLUMN reminders;
