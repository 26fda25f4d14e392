-- Executions waiting for a named event about a contact (`wait_for_event`), found
-- by event name and contact when an event is ingested. Twin:
-- migrations/postgres/V2__engine.sql.
CREATE TABLE event_waits (
    id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    fiber INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    contact_id INTEGER REFERENCES contacts (id) ON DELETE CASCADE,
    match_expr TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX event_waits_by_event ON event_waits (event, contact_id);
CREATE INDEX event_waits_by_execution ON event_waits (execution_id, fiber);

-- Finished executions are pruned by age; step records follow by cascade.
CREATE INDEX executions_by_completion ON executions (completed_at);

-- The last cron occurrence each schedule-triggered workflow fired, so a worker that
-- starts after downtime knows what it missed (see docs/engine.md, catch-up).
CREATE TABLE schedule_state (
    workflow_id TEXT PRIMARY KEY,
    last_occurrence INTEGER NOT NULL
);
