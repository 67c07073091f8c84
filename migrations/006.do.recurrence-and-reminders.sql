-- Recurring tasks and reminders (contract 1.5).
--
-- A recurring task stays one task: completing an occurrence records it in task_occurrences and
-- moves the task to its next occurrence (src/tasks/service.ts, one transaction). The rule itself is
-- worked out in JavaScript (src/tasks/recurrence.ts); the database keeps what it needs between
-- completions: the rule, the wall-clock date and time of the current occurrence in the rule's zone
-- (recurrence_anchor: a time that does not exist that day is kept as written, while due_at holds
-- the instant RFC 5545 maps it to) and the occurrence's number, for COUNT.
ALTER TABLE tasks
  ADD COLUMN recurrence        jsonb,
  ADD COLUMN recurrence_anchor timestamp,
  ADD COLUMN occurrence        integer NOT NULL DEFAULT 1 CHECK (occurrence >= 1),
  ADD COLUMN reminders         jsonb   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reminders) = 'array' AND jsonb_array_length(reminders) <= 10),
  ADD CONSTRAINT tasks_recurrence_due CHECK (recurrence IS NULL OR (due_at IS NOT NULL AND recurrence_anchor IS NOT NULL));

-- Every completion of an occurrence: its due time, its number in its series (a new rule numbers
-- from 1 again) and when it was completed. A history, not a guard: retries are kept from
-- completing twice by Idempotency-Key and If-Match.
CREATE TABLE task_occurrences (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id      bigint      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  due_at       timestamptz NOT NULL,
  occurrence   integer     NOT NULL,
  user_id      text        NOT NULL,
  completed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_occurrences_task_idx ON task_occurrences (task_id, completed_at);

-- A version, updated_at and feed position also for changes of the new fields.
CREATE OR REPLACE FUNCTION tasks_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.title, NEW.description, NEW.completed, NEW.due_at, NEW.priority, NEW.tags, NEW.position,
      NEW.recurrence, NEW.occurrence, NEW.reminders)
     IS DISTINCT FROM (OLD.title, OLD.description, OLD.completed, OLD.due_at, OLD.priority, OLD.tags, OLD.position,
      OLD.recurrence, OLD.occurrence, OLD.reminders) THEN
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

-- The feed's second source holds more than tombstones now: also the reminders that fired, each
-- once (event_id, the receiver's deduplication key, is unique per user). Same positions, same
-- retention, same floor for a full sync.
ALTER TABLE task_tombstones RENAME TO task_events;
ALTER TABLE task_events RENAME COLUMN deleted_at TO happened_at;
ALTER INDEX task_tombstones_deleted_idx RENAME TO task_events_happened_idx;
ALTER TABLE task_events
  ADD COLUMN kind     text  NOT NULL DEFAULT 'delete' CHECK (kind IN ('delete', 'reminder')),
  ADD COLUMN event_id text,
  ADD COLUMN payload  jsonb,
  ALTER COLUMN change_xid SET DEFAULT pg_current_xact_id(),
  ALTER COLUMN change_seq SET DEFAULT nextval('task_change_seq');
CREATE UNIQUE INDEX task_events_event_id_idx ON task_events (user_id, event_id);

CREATE OR REPLACE FUNCTION tasks_leave_tombstones() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_events (user_id, task_id, change_xid, change_seq)
    SELECT user_id, id, pg_current_xact_id(), nextval('task_change_seq') FROM gone_tasks;
  RETURN NULL;
END;
$$;

-- When each reminder of a pending task fires: kept by the triggers below from the task's own
-- due_at, completed and reminders, so every way a task changes (one task, a batch, a completion
-- that moves it) reschedules it. Only what is still to come is rescheduled, by the real clock
-- (clock_timestamp(), not the time the writing transaction began, which may have waited for a
-- lock meanwhile): a row already due stays, to be fired as it is, and one already fired is not
-- scheduled again. A reminder whose time has passed when it is worked out is not scheduled; one
-- that falls due while no server runs stays here until a server fires it.
CREATE TABLE reminder_schedule (
  task_id        bigint      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  reminder_key   text        NOT NULL,
  fire_at        timestamptz NOT NULL,
  user_id        text        NOT NULL,
  reminder       jsonb       NOT NULL,
  occurrence_due timestamptz,
  PRIMARY KEY (task_id, reminder_key, fire_at)
);
CREATE INDEX reminder_schedule_fire_idx ON reminder_schedule (fire_at);

CREATE FUNCTION tasks_schedule_reminders() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  present timestamptz := clock_timestamp();
BEGIN
  DELETE FROM reminder_schedule WHERE task_id = NEW.id AND fire_at > present;
  IF NOT NEW.completed THEN
    INSERT INTO reminder_schedule (task_id, reminder_key, fire_at, user_id, reminder, occurrence_due)
      SELECT NEW.id, k.reminder_key, k.fire_at, NEW.user_id, r.value, NEW.due_at
        FROM jsonb_array_elements(NEW.reminders) AS r(value)
        CROSS JOIN LATERAL (SELECT
          CASE WHEN r.value ? 'before_minutes' THEN 'b' || (r.value->>'before_minutes')
               ELSE 'a' || (extract(epoch FROM (r.value->>'at')::timestamptz) * 1000000)::bigint END AS reminder_key,
          CASE WHEN r.value ? 'before_minutes' THEN NEW.due_at - make_interval(mins => (r.value->>'before_minutes')::integer)
               ELSE (r.value->>'at')::timestamptz END AS fire_at) AS k
       WHERE k.fire_at > present
      ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_schedule_reminders_insert AFTER INSERT ON tasks
  FOR EACH ROW WHEN (NEW.reminders <> '[]'::jsonb) EXECUTE FUNCTION tasks_schedule_reminders();
CREATE TRIGGER tasks_schedule_reminders_update AFTER UPDATE ON tasks
  FOR EACH ROW WHEN (OLD.due_at IS DISTINCT FROM NEW.due_at OR OLD.completed IS DISTINCT FROM NEW.completed
                     OR OLD.reminders IS DISTINCT FROM NEW.reminders)
  EXECUTE FUNCTION tasks_schedule_reminders();
