-- Workflow analytics per day: the runs that finished on each UTC day, with
-- their outcome, exact median and 95th-percentile duration and failures per
-- step, computed once when the day is over (a day closes ten minutes after
-- midnight), so a report over months reads one row per workflow and day.
-- `rollup_marks` remembers the last day rolled up.
-- Twin: migrations/postgres/V25__workflow_days.sql.
CREATE TABLE workflow_days (
    workflow_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    p50_ms INTEGER NOT NULL,
    p95_ms INTEGER NOT NULL,
    -- {"step_id": failures, ...}
    step_failures TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (workflow_id, day)
);
CREATE INDEX workflow_days_by_day ON workflow_days (day);

CREATE TABLE rollup_marks (
    name TEXT PRIMARY KEY,
    -- The last day (days since the Unix epoch) fully rolled up.
    done_until INTEGER NOT NULL
);
