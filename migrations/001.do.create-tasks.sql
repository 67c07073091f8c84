-- Tasks, each owned by one user (the token's `sub`). Limits are enforced here as well as in the
-- contract, so no path around the API can store what the API would refuse.
CREATE TABLE tasks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     text        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 255),
  title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500 AND btrim(title) <> ''),
  description text                 CHECK (char_length(description) <= 2000),
  completed   boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One index per sort key, each led by user_id and ending in id (the tie-breaker), so a page of any
-- listing is one index range scan whatever the user's task count: keyset pagination stays flat.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_title_idx   ON tasks (user_id, (lower(title) COLLATE "C"), id);

-- updated_at moves only when something really changed, so an idempotent write is a no-op.
CREATE FUNCTION tasks_touch_updated_at() RETURNS trigger
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

CREATE TRIGGER tasks_touch_updated_at
BEFORE UPDATE ON tasks
FOR EACH ROW EXECUTE FUNCTION tasks_touch_updated_at();
