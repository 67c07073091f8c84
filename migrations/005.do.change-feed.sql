-- The change feed (GET /api/tasks/changes, the event stream): every write leaves its position, and
-- every delete a tombstone, in an order readers can follow without missing a write.
--
-- A position is (the writing transaction's id, a global sequence number). Transaction ids are
-- handed out in increasing order, and a reader takes only the positions of transactions older than
-- its snapshot's xmin, all of which have ended (committed or rolled back): a transaction still
-- running holds the reader back at its id, so nothing can commit later at a position the reader
-- has passed. No lock is shared between writers, so a user's concurrent writes do not queue
-- behind each other (a per-user version row would make them; see docs/changes.md).
CREATE SEQUENCE task_change_seq;

-- Defaults fill existing rows (the table is rewritten once) and every insert; updates set them in
-- the trigger below, only when something really changed.
ALTER TABLE tasks
  ADD COLUMN change_xid xid8   NOT NULL DEFAULT pg_current_xact_id(),
  ADD COLUMN change_seq bigint NOT NULL DEFAULT nextval('task_change_seq');

-- A user's changes in feed order: each page is one range scan, whatever the user's task count.
CREATE INDEX tasks_user_change_idx ON tasks (user_id, change_xid, change_seq);

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

-- What a deleted task leaves for readers of the feed, kept CHANGES_RETENTION_SECONDS.
CREATE TABLE task_tombstones (
  user_id    text        NOT NULL,
  task_id    bigint      NOT NULL,
  change_xid xid8        NOT NULL,
  change_seq bigint      NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, change_xid, change_seq)
);
CREATE INDEX task_tombstones_deleted_idx ON task_tombstones (deleted_at);

CREATE FUNCTION tasks_leave_tombstones() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_tombstones (user_id, task_id, change_xid, change_seq)
    SELECT user_id, id, pg_current_xact_id(), nextval('task_change_seq') FROM gone_tasks;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_leave_tombstones AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS gone_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION tasks_leave_tombstones();

-- Per user, the newest position whose tombstone has been purged: a cursor from before it may have
-- missed a delete, so it is answered 410 cursor_expired.
CREATE TABLE change_horizons (
  user_id    text   PRIMARY KEY,
  change_xid xid8   NOT NULL,
  change_seq bigint NOT NULL
);

-- Single-use tickets for the event stream (a browser's EventSource cannot send Authorization):
-- the SHA-256 of the ticket, never the ticket itself.
CREATE TABLE event_tickets (
  ticket_hash       text        PRIMARY KEY,
  user_id           text        NOT NULL,
  expires_at        timestamptz NOT NULL,
  -- The bearer token's own end: a stream opened with the ticket closes then.
  token_valid_until timestamptz NOT NULL
);
CREATE INDEX event_tickets_expires_idx ON event_tickets (expires_at);
