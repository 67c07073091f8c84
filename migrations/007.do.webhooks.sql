-- Webhooks (contract 1.6).
--
-- An endpoint is a user's URL and the events it wants. Every change of a task is written, in the
-- transaction that makes it, as one message per endpoint that wants it (the outbox): the triggers
-- below run for every statement that writes tasks, whichever path wrote them, so a committed
-- change always has its messages and a rolled-back one never does. The dispatcher
-- (src/webhooks/dispatcher.ts) then claims due messages with FOR UPDATE SKIP LOCKED, one statement
-- that commits at once, so it works through a transaction pooler and with several instances.
CREATE TABLE webhook_endpoints (
  id                     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id                text        NOT NULL,
  url                    text        NOT NULL CHECK (char_length(url) <= 2048),
  description            text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
  events                 text[]      NOT NULL CHECK (cardinality(events) >= 1),
  enabled                boolean     NOT NULL DEFAULT true,
  -- Why it is disabled: 'user' (asked to), 'gone' (answered 410), 'failing' (failed every
  -- attempt for the whole retry schedule); NULL while enabled.
  disabled_reason        text        CHECK (disabled_reason IN ('user', 'gone', 'failing')),
  disabled_at            timestamptz,
  secret                 text        NOT NULL,
  -- After a rotation the previous secret signs too, until previous_secret_until.
  previous_secret        text,
  previous_secret_until  timestamptz,
  -- The first failed attempt since the last delivered one; NULL while deliveries succeed.
  failing_since          timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  CHECK (enabled = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_user_idx ON webhook_endpoints (user_id, id);

CREATE TABLE webhook_messages (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint_id     bigint      NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  -- webhook-id: the same for every endpoint that gets the event and for every attempt.
  message_id      text        NOT NULL,
  event_type      text        NOT NULL,
  data            jsonb       NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- Set while an instance delivers it: a claim that outlives this (the instance died) is taken again.
  leased_until    timestamptz,
  -- When it was delivered or given up: kept WEBHOOK_RETENTION_SECONDS from then.
  finished_at     timestamptz,
  -- Redelivery was asked for while an attempt was in flight: whatever that attempt's outcome
  -- short of delivery, the message is sent again at once with a fresh schedule.
  redeliver       boolean     NOT NULL DEFAULT false,
  UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_messages_endpoint_due_idx ON webhook_messages (endpoint_id, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_messages_leased_idx ON webhook_messages (endpoint_id) WHERE leased_until IS NOT NULL;
CREATE INDEX webhook_messages_finished_idx ON webhook_messages (finished_at) WHERE state <> 'pending';

CREATE TABLE webhook_attempts (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint_id  bigint      NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  message_pk   bigint      NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
  attempted_at timestamptz NOT NULL DEFAULT now(),
  status       integer,
  error        text,
  duration_ms  integer     NOT NULL
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_pk);

-- One message per endpoint of the task's user that wants the event. The event's id is drawn once
-- per event (a materialized CTE evaluates its volatile gen_random_uuid() once per row). The
-- endpoints are locked (KEY SHARE, as the foreign key would) before their messages are written:
-- an endpoint being deleted meanwhile is waited for and then skipped, where reading it from the
-- snapshot would insert a message the foreign key then refuses, failing the write.
CREATE FUNCTION webhooks_enqueue(events jsonb) RETURNS void
LANGUAGE sql AS $$
  WITH ev AS MATERIALIZED (
    SELECT e->>'user_id' AS user_id, e->>'type' AS event_type, e->'data' AS data,
           'msg_' || replace(gen_random_uuid()::text, '-', '') AS message_id
      FROM jsonb_array_elements(events) AS e),
  targets AS MATERIALIZED (
    SELECT w.id, w.user_id, w.events FROM webhook_endpoints w
     WHERE w.user_id IN (SELECT user_id FROM ev) AND w.enabled
       FOR KEY SHARE)
  INSERT INTO webhook_messages (endpoint_id, message_id, event_type, data)
  SELECT t.id, ev.message_id, ev.event_type, ev.data
    FROM ev JOIN targets t ON t.user_id = ev.user_id AND ev.event_type = ANY (t.events)
$$;

CREATE FUNCTION tasks_webhooks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.user_id IN (SELECT user_id FROM new_tasks)) THEN
    PERFORM webhooks_enqueue(jsonb_agg(jsonb_build_object('user_id', n.user_id, 'type', 'task.created',
      'data', jsonb_build_object('task_id', n.id, 'user_id', n.user_id, 'version', n.version))))
      FROM new_tasks n;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_webhooks_inserted AFTER INSERT ON tasks
  REFERENCING NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_webhooks_inserted();

-- A completion is the task becoming completed, or a recurring task moving on to its next
-- occurrence; any other change of its version is an update. A write that changed nothing is none.
CREATE FUNCTION tasks_webhooks_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.user_id IN (SELECT user_id FROM new_tasks)) THEN
    PERFORM webhooks_enqueue(jsonb_agg(jsonb_build_object('user_id', n.user_id,
      'type', CASE WHEN (n.completed AND NOT o.completed) OR n.occurrence > o.occurrence THEN 'task.completed' ELSE 'task.updated' END,
      'data', jsonb_build_object('task_id', n.id, 'user_id', n.user_id, 'version', n.version))))
      FROM new_tasks n JOIN old_tasks o ON o.id = n.id
     WHERE n.version <> o.version
    HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_webhooks_updated AFTER UPDATE ON tasks
  REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_webhooks_updated();

CREATE FUNCTION tasks_webhooks_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.user_id IN (SELECT user_id FROM gone_tasks)) THEN
    PERFORM webhooks_enqueue(jsonb_agg(jsonb_build_object('user_id', g.user_id, 'type', 'task.deleted',
      'data', jsonb_build_object('task_id', g.id, 'user_id', g.user_id))))
      FROM gone_tasks g;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_webhooks_deleted AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS gone_tasks FOR EACH STATEMENT EXECUTE FUNCTION tasks_webhooks_deleted();

-- A reminder that fired (a row of the change feed's events) is a reminder.due message.
CREATE FUNCTION task_events_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.user_id IN (SELECT user_id FROM new_events WHERE kind = 'reminder')) THEN
    PERFORM webhooks_enqueue(jsonb_agg(jsonb_build_object('user_id', e.user_id, 'type', 'reminder.due',
      'data', jsonb_build_object('task_id', e.task_id, 'user_id', e.user_id, 'reminder_id', e.event_id,
                                 'due_at', e.payload->'due_at', 'remind_at', e.payload->'remind_at'))))
      FROM new_events e WHERE e.kind = 'reminder'
    HAVING count(*) > 0;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER task_events_webhooks AFTER INSERT ON task_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION task_events_webhooks();
