-- Activities of one type in a window of time (the TUI's dashboard: opens,
-- clicks and form posts per day) by index, not by every activity of the type
-- ever stored. Twin: migrations/sqlite/V18__activities_by_type_time.sql.
CREATE INDEX activities_by_type_time ON activities (type, occurred_at);
