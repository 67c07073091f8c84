DROP TABLE tasks;
DROP FUNCTION tasks_touch_updated_at();
